package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// FaultKind names a fault the harness injects.
type FaultKind string

// Fault kinds.
const (
	KillWorker      FaultKind = "kill"             // SIGKILL a worker, start a replacement
	TermWorker      FaultKind = "term"             // SIGTERM a worker (graceful), start a replacement
	StopWorker      FaultKind = "stop"             // SIGSTOP a worker until its shards moved, then SIGCONT (a zombie)
	RestartDynamoDB FaultKind = "restart-dynamodb" // SIGKILL DynamoDB Local, start it on its data
	RestartKinesis  FaultKind = "restart-kinesis"  // SIGKILL kinesalite, start it on its data
)

// AllFaults lists every kind, in the order a CI run injects them.
var AllFaults = []FaultKind{KillWorker, RestartDynamoDB, StopWorker, RestartKinesis, TermWorker}

// ParseFaults reads a comma-separated list of kinds.
func ParseFaults(s string) ([]FaultKind, error) {
	var out []FaultKind
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(AllFaults, FaultKind(f)) {
			return nil, fmt.Errorf("chaos: unknown fault %q (want %v)", f, AllFaults)
		}
		out = append(out, FaultKind(f))
	}
	return out, nil
}

// Config parameterises a run. Zero fields take the defaults in brackets.
type Config struct {
	Seed    uint64
	Workers int // [3]
	Shards  int // [4]
	// Faults is the schedule's kinds in order; empty: FaultCount kinds
	// drawn from Seed.
	Faults     []FaultKind
	FaultCount int // [len(AllFaults)]
	// Rate is event seconds produced per wall second [10]; each event
	// second holds HitsPerSecond hits [20] over IPs client IPs [200] and
	// 0-3 orders.
	Rate          float64
	HitsPerSecond int
	IPs           int
	// Gap bounds the random quiet time between faults [1s, 3s].
	GapMin, GapMax time.Duration
	// RecoveryTimeout bounds the wait for every shard to move after a
	// fault [120s: measured recoveries are 1-21 s, and a bound only
	// matters when the run fails]; SettleTimeout the final wait for results [120s].
	RecoveryTimeout, SettleTimeout time.Duration
	// Worker settings.
	MaxRecords   int           // [50] records per GetRecords: bounds duplicates per fault
	FailoverTime time.Duration // [6s]
	// Topic is the alarm topic's kind [standard]; the alarm check asserts
	// that kind's guarantee (see checkAlarms).
	Topic TopicKind

	ConsumerBin string // built consumer binary
	Script      string // scripts/localstack
	Dir         string // work directory (stack data, logs, audit files)
	Log         io.Writer
}

// TopicKind is the kind of SNS topic alarms go to.
type TopicKind string

// The topic kinds and the delivery each promises (orderflood's README).
const (
	// TopicStandard: every period's messages carry one dedup_id; a repeat
	// comes only from a worker killed between a publish and its record.
	TopicStandard TopicKind = "standard"
	// TopicFIFO: exactly one message per period after SNS FIFO
	// de-duplication on MessageDeduplicationId. goaws v0.5.4 ignores it
	// on SNS publishes, so the check applies SNS's rule to the dedup_id
	// every message carries (the one sent as MessageDeduplicationId: the
	// sns sink's wire test pins that).
	TopicFIFO TopicKind = "fifo"
)

func (c *Config) defaults() error {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Workers, 3)
	def(&c.Shards, 4)
	def(&c.FaultCount, len(AllFaults))
	def(&c.HitsPerSecond, 20)
	def(&c.IPs, 200)
	def(&c.MaxRecords, 50)
	if c.Rate <= 0 {
		c.Rate = 10
	}
	defDur(&c.GapMin, time.Second)
	defDur(&c.GapMax, 3*time.Second)
	defDur(&c.RecoveryTimeout, 120*time.Second)
	defDur(&c.SettleTimeout, 120*time.Second)
	defDur(&c.FailoverTime, 6*time.Second)
	if c.Log == nil {
		c.Log = io.Discard
	}
	switch {
	case c.ConsumerBin == "" || c.Script == "" || c.Dir == "":
		return errors.New("chaos: ConsumerBin, Script and Dir are required")
	case c.GapMax < c.GapMin:
		return errors.New("chaos: GapMax < GapMin")
	case c.Workers < 2:
		return errors.New("chaos: at least 2 workers (one must survive a fault)")
	}
	switch c.Topic {
	case "":
		c.Topic = TopicStandard
	case TopicStandard, TopicFIFO:
	default:
		return fmt.Errorf("chaos: topic kind %q: want standard or fifo", c.Topic)
	}
	return nil
}

// FaultResult is what one fault did.
type FaultResult struct {
	Kind   FaultKind
	Target string        // worker ID or service
	At     time.Duration // since the workers started
	// Outage is how long the fault itself lasted: the server restart, or
	// how long a stopped worker stayed stopped.
	Outage time.Duration
	// Recovery is the time from the fault until every shard made progress
	// again (on a live worker other than the victim).
	Recovery  time.Duration
	Recovered bool
}

// Report is the verified outcome of a run.
type Report struct {
	Seed            uint64
	Workers, Shards int
	Records         int // records in the stream (sentinels included)
	Elapsed         time.Duration
	StackStart      time.Duration
	Faults          []FaultResult

	Missing, Duplicates, DuplicateBound int
	DeadLetters                         int

	TopNWindows, CounterBuckets, OrderSeconds int
	AlarmPeriods                              int // expected
	AlarmItems                                int
	SNSMessages                               int // as received from the queue
	// SNSRepeats are messages repeating a period's dedup_id, each from a
	// re-publish of a claim found in publishing (RePublishes counts those
	// the workers logged); SNSDelivered is what subscribers get after
	// de-duplication (FIFO: SNS; standard: the subscriber, by dedup_id).
	SNSRepeats, RePublishes, SNSDelivered int
	Topic                                 TopicKind

	// Problems lists every failed check; empty means the run passed.
	Problems []string
}

// OK reports whether every check passed.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) fail(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// String renders the report for people.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run: seed %d, %d workers, %d shards, %d records, %s (stack start %s)\n",
		r.Seed, r.Workers, r.Shards, r.Records, r.Elapsed.Round(100*time.Millisecond), r.StackStart.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "%-17s %-12s %8s %8s %10s\n", "fault", "target", "at", "outage", "recovery")
	for _, f := range r.Faults {
		rec := f.Recovery.Round(100 * time.Millisecond).String()
		if !f.Recovered {
			rec = "NOT RECOVERED"
		}
		fmt.Fprintf(&b, "%-17s %-12s %8s %8s %10s\n", f.Kind, f.Target, f.At.Round(100*time.Millisecond), f.Outage.Round(100*time.Millisecond), rec)
	}
	byKind := map[FaultKind][]time.Duration{}
	for _, f := range r.Faults {
		if f.Recovered {
			byKind[f.Kind] = append(byKind[f.Kind], f.Recovery)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		d := byKind[k]
		slices.Sort(d)
		fmt.Fprintf(&b, "recovery %-17s n=%-3d median %8s max %8s\n", k, len(d),
			d[len(d)/2].Round(100*time.Millisecond), d[len(d)-1].Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "records lost: %d; duplicates: %d (bound %d); dead letters: %d\n", r.Missing, r.Duplicates, r.DuplicateBound, r.DeadLetters)
	fmt.Fprintf(&b, "exact: %d top-N windows, %d counter buckets, %d order seconds; alarms: %d periods expected, %d items, %d SNS messages\n",
		r.TopNWindows, r.CounterBuckets, r.OrderSeconds, r.AlarmPeriods, r.AlarmItems, r.SNSMessages)
	fmt.Fprintf(&b, "alarm topic %s: %d messages received, %d repeats of a dedup_id (%d re-publishes logged), %d after de-duplication\n",
		r.Topic, r.SNSMessages, r.SNSRepeats, r.RePublishes, r.SNSDelivered)
	if r.OK() {
		b.WriteString("PASS\n")
	} else {
		fmt.Fprintf(&b, "FAIL (%d problems):\n", len(r.Problems))
		for i, p := range r.Problems {
			if i == 30 {
				fmt.Fprintf(&b, "  ... %d more\n", len(r.Problems)-30)
				break
			}
			fmt.Fprintf(&b, "  - %s\n", p)
		}
	}
	return b.String()
}

type run struct {
	cfg     Config
	rnd     *rand.Rand
	stack   *Stack
	cl      Clients
	app     string
	stream  string
	topic   string
	queue   string
	fleet   *Fleet
	audit   *auditTail
	shards  []ktypes.Shard
	start   time.Time
	wl      Workload
	lastSec int // last event second produced
	report  *Report
}

func (h *run) logf(format string, args ...any) {
	fmt.Fprintf(h.cfg.Log, "chaos %6.1fs: "+format+"\n", append([]any{time.Since(h.start).Seconds()}, args...)...)
}

// Run executes one chaos run. The error is for harness failures (the
// stack would not start); a run whose checks fail returns a Report whose
// Problems say why.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	h := &run{
		cfg:    cfg,
		rnd:    rand.New(rand.NewPCG(cfg.Seed, 0xc4a05)),
		start:  time.Now(),
		audit:  newAuditTail(),
		report: &Report{Seed: cfg.Seed, Workers: cfg.Workers, Shards: cfg.Shards, Topic: cfg.Topic},
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	var err error
	h.stack, err = NewStack(cfg.Script, filepath.Join(cfg.Dir, "stack"), h.logf)
	if err != nil {
		return nil, err
	}
	h.logf("starting private stack in %s (kinesis :%d, dynamodb :%d, sns :%d, persistence on)", h.stack.Dir, h.stack.KinesisPort, h.stack.DynamoDBPort, h.stack.SNSPort)
	t0 := time.Now()
	if err := h.stack.Up(ctx); err != nil {
		_ = h.stack.Down(context.WithoutCancel(ctx))
		return nil, err
	}
	h.report.StackStart = time.Since(t0)
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		if err := h.stack.Down(dctx); err != nil {
			h.logf("stack down: %v", err)
		}
	}()
	h.cl = h.stack.Clients()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	h.fleet = &Fleet{Bin: cfg.ConsumerBin, Config: filepath.Join(cfg.Dir, "consumer.yaml"), Dir: cfg.Dir, Env: h.stack.WorkerEnv()}
	if err := h.writeConfig(); err != nil {
		return nil, err
	}
	defer h.fleet.StopAll(20 * time.Second)
	h.start = time.Now()
	for i := 1; i <= cfg.Workers; i++ {
		p, err := h.fleet.Start("w" + strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		h.logf("worker %s started", p.ID)
	}
	tailCtx, stopTail := context.WithCancel(ctx)
	var tailWG sync.WaitGroup
	tailWG.Add(1)
	go func() { defer tailWG.Done(); h.audit.tailLoop(tailCtx, h.fleet, 100*time.Millisecond) }()
	defer func() { stopTail(); tailWG.Wait() }()

	// Produce while faults are injected.
	prodCtx, stopProd := context.WithCancel(ctx)
	prodErr := make(chan error, 1)
	go func() { prodErr <- h.produce(prodCtx) }()
	h.waitAllProgress(ctx, time.Now(), "", 90*time.Second)
	h.logf("every shard is moving; injecting faults")
	h.inject(ctx)
	stopProd()
	if err := <-prodErr; err != nil && !errors.Is(err, context.Canceled) {
		h.report.fail("producer: %v", err)
	}
	h.logf("producer stopped after %d event seconds", h.lastSec+1)
	if err := h.finish(ctx); err != nil {
		return h.report, err
	}
	h.report.Elapsed = time.Since(h.start)
	return h.report, nil
}

func (h *run) setup(ctx context.Context) error {
	suffix := strconv.FormatUint(h.cfg.Seed, 36) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e8, 36)
	h.app, h.stream = "chaos-"+suffix, "chaos-"+suffix
	cmd := exec.CommandContext(ctx, h.cfg.ConsumerBin, "setup", "--app", h.app, "--stream", h.stream, "--shards", strconv.Itoa(h.cfg.Shards))
	cmd.Env = h.stack.WorkerEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: consumer setup: %w\n%s", err, out)
	}
	h.topic = "arn:aws:sns:us-east-1:000000000000:" + h.app + "-alarms"
	queue := &sqs.CreateQueueInput{QueueName: aws.String(h.app + "-q")}
	if h.cfg.Topic == TopicFIFO {
		// A FIFO topic delivers to FIFO queues only.
		t, err := h.cl.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(h.app + "-alarms.fifo"),
			Attributes: map[string]string{"FifoTopic": "true"}})
		if err != nil {
			return fmt.Errorf("chaos: create FIFO topic: %w", err)
		}
		h.topic = aws.ToString(t.TopicArn)
		queue = &sqs.CreateQueueInput{QueueName: aws.String(h.app + "-q.fifo"), Attributes: map[string]string{"FifoQueue": "true"}}
	}
	q, err := h.cl.SQS.CreateQueue(ctx, queue)
	if err != nil {
		return fmt.Errorf("chaos: create queue: %w", err)
	}
	h.queue = aws.ToString(q.QueueUrl)
	attrs, err := h.cl.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("chaos: queue attributes: %w", err)
	}
	if _, err := h.cl.SNS.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: aws.String(h.topic), Protocol: aws.String("sqs"),
		Endpoint:   aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{"RawMessageDelivery": "true"},
	}); err != nil {
		return fmt.Errorf("chaos: subscribe: %w", err)
	}
	out, err := h.cl.Kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(h.stream)})
	if err != nil {
		return fmt.Errorf("chaos: list shards: %w", err)
	}
	h.shards = out.Shards
	// Event times lie hours ahead of the clock: windows then close by the
	// shards' watermarks only, never by the idle clock, so stalls caused
	// by faults cannot turn records late.
	base := time.Now().UTC().Truncate(time.Hour).Add(2 * time.Hour)
	h.wl = Workload{Seed: h.cfg.Seed, Base: base, HitsPerSecond: h.cfg.HitsPerSecond, IPs: h.cfg.IPs}
	return nil
}

func (h *run) writeConfig() error {
	body := fmt.Sprintf(`stream: %s
app: %s
initial_position: TRIM_HORIZON
format: auto
failover_time: %s
poll_interval: 200ms
shutdown_timeout: 15s
max_records: %d
log_format: json
log_level: info
deadletter:
  sink: file
  path: %s
metrics:
  sink: none
alarms:
  topic_arn: %s
processors:
  topn:
    window: 60s
    grace: 5s
  counters:
    grace: 5s
    update_interval: 2s
  orderflood:
    threshold: 30
    window: 15s
    suppression: 1m
    grace: 5s
`, h.stream, h.app, h.cfg.FailoverTime, h.cfg.MaxRecords, filepath.Join(h.cfg.Dir, "deadletter.jsonl"), h.topic)
	return os.WriteFile(h.fleet.Config, []byte(body), 0o600)
}

// produce puts event seconds at cfg.Rate until ctx ends, retrying every
// failure (the stack restarts under it) so the stream keeps each shard's
// event-time order.
func (h *run) produce(ctx context.Context) error {
	every := time.Duration(float64(time.Second) / h.cfg.Rate)
	next := time.Now()
	for i := 0; ; i++ {
		if err := h.put(ctx, h.wl.Second(i), nil); err != nil {
			return err
		}
		h.lastSec = i
		next = next.Add(every)
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
	}
}

// put writes entries, retrying failed ones in order. hashKeys, when set,
// routes entry i by explicit hash key.
func (h *run) put(ctx context.Context, entries []Entry, hashKeys []string) error {
	req := make([]ktypes.PutRecordsRequestEntry, len(entries))
	for i, e := range entries {
		req[i] = ktypes.PutRecordsRequestEntry{Data: e.Data, PartitionKey: aws.String(e.PartitionKey)}
		if hashKeys != nil {
			req[i].ExplicitHashKey = aws.String(hashKeys[i])
		}
	}
	wait := 100 * time.Millisecond
	for len(req) > 0 {
		out, err := h.cl.Kinesis.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(h.stream), Records: req})
		if err == nil {
			var retry []ktypes.PutRecordsRequestEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					retry = append(retry, req[i])
				}
			}
			req = retry
			if len(req) == 0 {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
	return nil
}

// waitAllProgress waits until every shard moved after since on a process
// other than exclude.
func (h *run) waitAllProgress(ctx context.Context, since time.Time, exclude string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		_ = h.audit.poll(h.fleet.Procs())
		all := true
		for _, s := range h.shards {
			if !h.audit.progressedSince(aws.ToString(s.ShardId), since, exclude) {
				all = false
				break
			}
		}
		if all {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *run) schedule() []FaultKind {
	if len(h.cfg.Faults) > 0 {
		return h.cfg.Faults
	}
	out := make([]FaultKind, h.cfg.FaultCount)
	for i := range out {
		out[i] = AllFaults[h.rnd.IntN(len(AllFaults))]
	}
	return out
}

func (h *run) inject(ctx context.Context) {
	for _, kind := range h.schedule() {
		gap := h.cfg.GapMin + time.Duration(h.rnd.Int64N(int64(h.cfg.GapMax-h.cfg.GapMin)+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		res := h.fault(ctx, kind)
		h.report.Faults = append(h.report.Faults, res)
		if res.Recovered {
			h.logf("%s %s: recovered after %s", res.Kind, res.Target, res.Recovery.Round(100*time.Millisecond))
		} else {
			h.report.fail("%s of %s: shards did not all move again within %s", res.Kind, res.Target, h.cfg.RecoveryTimeout)
		}
	}
}

// victim picks a live worker that holds leases (a fault on an idle
// worker tests nothing), else any live worker.
func (h *run) victim(ctx context.Context) *Proc {
	live := h.fleet.Live()
	sort.Slice(live, func(i, j int) bool { return live[i].ID < live[j].ID })
	owners := h.owners(ctx)
	var holding []*Proc
	for _, p := range live {
		for _, o := range owners {
			if o == p.ID {
				holding = append(holding, p)
				break
			}
		}
	}
	if len(holding) > 0 {
		return holding[h.rnd.IntN(len(holding))]
	}
	return live[h.rnd.IntN(len(live))]
}

// owners maps shard ID to the lease owner in the lease table.
func (h *run) owners(ctx context.Context) map[string]string {
	out := map[string]string{}
	res, err := h.cl.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(h.app), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return out
	}
	for _, it := range res.Items {
		out[str(it["ShardID"])] = str(it["AssignedTo"])
	}
	return out
}

func slotOf(id string) string {
	slot, _, _ := strings.Cut(id, "-")
	return slot
}

func (h *run) fault(ctx context.Context, kind FaultKind) FaultResult {
	res := FaultResult{Kind: kind, At: time.Since(h.start)}
	t0 := time.Now()
	switch kind {
	case KillWorker, TermWorker, StopWorker:
		v := h.victim(ctx)
		res.Target = v.ID
		sig := map[FaultKind]syscall.Signal{KillWorker: syscall.SIGKILL, TermWorker: syscall.SIGTERM, StopWorker: syscall.SIGSTOP}[kind]
		h.logf("%s: %s to %s", kind, sig, v.ID)
		if err := v.Signal(sig); err != nil {
			h.report.fail("%v", err)
			return res
		}
		res.Recovered = h.waitAllProgress(ctx, t0, v.ID, h.cfg.RecoveryTimeout)
		res.Recovery = time.Since(t0)
		switch kind {
		case StopWorker:
			// Resume the zombie: its fenced writes must fail and it must
			// rejoin without double counting.
			res.Outage = time.Since(t0)
			if err := v.Signal(syscall.SIGCONT); err != nil {
				h.report.fail("%v", err)
			}
		case TermWorker:
			if !v.Wait(20 * time.Second) {
				h.report.fail("worker %s did not exit within 20s of SIGTERM", v.ID)
			}
			fallthrough
		default:
			if p, err := h.fleet.Start(slotOf(v.ID)); err != nil {
				h.report.fail("%v", err)
			} else {
				h.logf("replacement worker %s started", p.ID)
			}
		}
	case RestartDynamoDB, RestartKinesis:
		svc := DynamoDB
		if kind == RestartKinesis {
			svc = Kinesis
		}
		res.Target = svc
		h.logf("%s: SIGKILL and restart", svc)
		if err := h.stack.Restart(ctx, svc); err != nil {
			h.report.fail("restart %s: %v", svc, err)
			return res
		}
		res.Outage = time.Since(t0)
		h.logf("%s back after %s", svc, res.Outage.Round(100*time.Millisecond))
		res.Recovered = h.waitAllProgress(ctx, time.Now(), "", h.cfg.RecoveryTimeout)
		res.Recovery = time.Since(t0)
	}
	return res
}
