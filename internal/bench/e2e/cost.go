package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/internal/setup"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// Prices used for the dollar figures (us-east-1 on-demand, DESIGN.md §7).
const (
	PricePerMillionWRU = 0.625
	PricePerMillionRRU = 0.125
	PriceShardHour     = 0.015
	hoursPerMonth      = 730
)

// CostFile is the name of a cost session's results in its OutDir.
const CostFile = "cost.json"

// TableClasses are the table classes a cost run reports, in order.
var TableClasses = []string{"leases", "results", "counters", "alarms", "deadletter", "orders"}

// CostConfig is one cost session: one worker with the example
// configuration's processors on a stream of Shards shards, records put at
// Rate for Warmup+Seconds, DynamoDB units read from the worker's /metrics
// (shardwatch_dynamodb_units_total) over the last Seconds.
type CostConfig struct {
	// Bins are the consumer builds to compare, as label=path or
	// label=path@config (a configuration of its own instead of Example);
	// runs alternate between them Repeat times (same machine, same load).
	Bins    []string
	DataDir string
	OutDir  string
	// Example is the worker configuration whose processors and flush
	// settings are measured (deploy/consumer.example.yaml).
	Example          string
	Shards, Rate     int
	Warmup, Seconds  time.Duration
	Repeat           int
	BurstEvery       time.Duration
	BurstOrders      int
	PollInterval     time.Duration
	ResultLatencyKey string // windowed result whose global item is timed, e.g. "topn#60s#"
}

// CostDefaults measures 8 shards at 1,000 records/s each for 2 minutes.
func CostDefaults() CostConfig {
	return CostConfig{
		Shards: 8, Rate: 8000, Warmup: 20 * time.Second, Seconds: 120 * time.Second, Repeat: 1,
		BurstEvery: 20 * time.Second, BurstOrders: 40, ResultLatencyKey: "topn#60s#",
	}
}

// CostRun is one measured run.
type CostRun struct {
	Label   string  `json:"label"`
	Rep     int     `json:"rep"`
	Shards  int     `json:"shards"`
	Seconds float64 `json:"seconds"`
	// RecordsPerSec is the put rate reached over the measured seconds.
	RecordsPerSec float64 `json:"records_per_sec"`
	// Write and Read are units per shard-second by table class.
	Write map[string]float64 `json:"write"`
	Read  map[string]float64 `json:"read"`
	// CPUPer1000 is the worker's CPU seconds per 1,000 records put.
	CPUPer1000 float64 `json:"cpu_per_1000"`
	// ResultLatencyMs: window end to its final global item, per window.
	ResultLatencyMs []float64 `json:"result_latency_ms"`
	// AlarmLatencyMs: order burst put to SNS message in SQS.
	AlarmLatencyMs []float64 `json:"alarm_latency_ms"`
	Errors         []string  `json:"errors,omitempty"`
}

// Core sums the write and read units of leases, results, counters and
// alarms (the budget: orders scale with orders).
func (r CostRun) Core() (w, rd float64) {
	for _, c := range []string{"leases", "results", "counters", "alarms"} {
		w += r.Write[c]
		rd += r.Read[c]
	}
	return w, rd
}

// DollarsPerShardMonth is the on-demand price of the units, all tables.
func (r CostRun) DollarsPerShardMonth(includeOrders bool) float64 {
	var w, rd float64
	for c, v := range r.Write {
		if c != "orders" || includeOrders {
			w += v
		}
	}
	for c, v := range r.Read {
		if c != "orders" || includeOrders {
			rd += v
		}
	}
	sec := float64(hoursPerMonth * 3600)
	return (w*PricePerMillionWRU + rd*PricePerMillionRRU) * sec / 1e6
}

// RunCost runs a cost session and writes OutDir/cost.json.
func RunCost(ctx context.Context, cfg CostConfig, log *zap.Logger) ([]CostRun, error) {
	if len(cfg.Bins) == 0 || cfg.Example == "" || cfg.DataDir == "" || cfg.OutDir == "" {
		return nil, errors.New("cost: binaries, example config, data and output directories are required")
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	c, err := newClients(ctx)
	if err != nil {
		return nil, err
	}
	pl, err := loadPayloads(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var runs []CostRun
	for rep := 1; rep <= cfg.Repeat; rep++ {
		for _, b := range cfg.Bins {
			label, bin, ok := strings.Cut(b, "=")
			if !ok {
				label, bin = filepath.Base(b), b
			}
			one := cfg
			if b, conf, ok := strings.Cut(bin, "@"); ok {
				bin, one.Example = b, conf
			}
			r := costOne(ctx, one, c, pl, label, bin, rep, log.With(zap.String("label", label), zap.Int("rep", rep)))
			runs = append(runs, r)
			if err := writeJSON(filepath.Join(cfg.OutDir, CostFile), runs); err != nil {
				return runs, err
			}
			log.Info("cost run done", zap.String("label", label), zap.Any("write", r.Write), zap.Any("read", r.Read), zap.Strings("errors", r.Errors))
			if ctx.Err() != nil {
				return runs, ctx.Err()
			}
		}
	}
	return runs, nil
}

func costConfig(cfg CostConfig, r *resources, id, audit, opsAddr, metrics string) ([]byte, error) {
	b, err := os.ReadFile(cfg.Example)
	if err != nil {
		return nil, err
	}
	doc := map[string]any{}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Example, err)
	}
	for k, v := range map[string]any{
		"stream": r.stream, "app": r.app, "worker_id": id, "initial_position": "TRIM_HORIZON",
		"ops_addr": opsAddr, "log_format": "json", "audit_log": audit,
		"metrics":    map[string]any{"sink": "emf", "path": metrics},
		"alarms":     map[string]any{"topic_arn": r.topicARN},
		"deadletter": map[string]any{"sink": "dynamodb"},
	} {
		doc[k] = v
	}
	if cfg.PollInterval > 0 {
		doc["poll_interval"] = cfg.PollInterval.String()
	}
	return yaml.Marshal(doc)
}

func costOne(ctx context.Context, cfg CostConfig, c *clients, pl *payloads, label, bin string, rep int, log *zap.Logger) (run CostRun) {
	run = CostRun{Label: label, Rep: rep, Shards: cfg.Shards}
	fail := func(err error) CostRun {
		run.Errors = append(run.Errors, err.Error())
		return run
	}
	res, err := createResources(ctx, c, "cost", cfg.Shards, log)
	if err != nil {
		return fail(err)
	}
	defer res.delete(context.WithoutCancel(ctx), log)
	dir := filepath.Join(cfg.OutDir, fmt.Sprintf("%s-rep%d", label, rep))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	addr, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	w := &worker{id: "cost-" + label, audit: filepath.Join(dir, "audit.log"), opsAddr: addr, done: make(chan struct{})}
	y, err := costConfig(cfg, res, w.id, w.audit, addr, filepath.Join(dir, "metrics.emf"))
	if err != nil {
		return fail(err)
	}
	cpath := filepath.Join(dir, "consumer.yaml")
	if err := os.WriteFile(cpath, y, 0o644); err != nil {
		return fail(err)
	}
	if err := w.start(bin, []string{"run", "--config", cpath}, filepath.Join(dir, "worker.log")); err != nil {
		return fail(err)
	}
	defer func() {
		if !w.exited() {
			_, _ = w.stop(35 * time.Second)
		}
	}()
	leaseCtx, cancel := context.WithTimeoutCause(ctx, 3*time.Minute, errors.New("worker did not lease every shard within 3m"))
	err = waitFor(leaseCtx, 250*time.Millisecond, func() (bool, error) {
		if w.exited() {
			return false, fmt.Errorf("%s: %w: %v", w.id, errWorkerExited, w.err)
		}
		held, err := res.leasesHeld(leaseCtx, map[string]bool{w.id: true})
		return held == cfg.Shards, err
	})
	cancel()
	if err != nil {
		return fail(err)
	}

	bgCtx, stopBG := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() { stopBG(); bg.Wait() }()
	var alarms alarmWatch
	bg.Add(1)
	go func() { defer bg.Done(); alarms.watch(bgCtx, c.sqs, res.queueURL) }()
	var bursts []time.Time
	var burstMu sync.Mutex
	bg.Add(1)
	go func() {
		defer bg.Done()
		t := time.NewTicker(cfg.BurstEvery)
		defer t.Stop()
		for {
			select {
			case <-bgCtx.Done():
				return
			case <-t.C:
			}
			if _, at, err := newProducer(c.kinesis, res.stream, cfg.BurstOrders).burst(bgCtx, pl, cfg.BurstOrders); err == nil {
				burstMu.Lock()
				bursts = append(bursts, at)
				burstMu.Unlock()
			}
		}
	}()
	var resultLat []float64
	var latMu sync.Mutex
	bg.Add(1)
	go func() {
		defer bg.Done()
		lat := watchResults(bgCtx, c.ddb, res.app+setup.SuffixResults, cfg.ResultLatencyKey)
		latMu.Lock()
		resultLat = lat
		latMu.Unlock()
	}()

	total := int((cfg.Warmup + cfg.Seconds).Seconds()) * cfg.Rate
	prod := newProducer(c.kinesis, res.stream, total)
	type mark struct {
		at    time.Time
		units map[[2]string]float64
		cpu   time.Duration
		put   int64
	}
	var marks [2]mark
	var markErr error
	measure := func(i int) {
		m := mark{at: time.Now(), put: prod.count()}
		m.units, markErr = scrapeUnits(ctx, w.opsAddr)
		m.cpu, _, _ = fleetStat([]*worker{w})
		marks[i] = m
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		if sleep(bgCtx, cfg.Warmup) != nil {
			return
		}
		measure(0)
		if sleep(bgCtx, cfg.Seconds) != nil {
			return
		}
		measure(1)
	}()
	if _, _, _, err := prod.paced(ctx, pl, total, cfg.Rate); err != nil {
		run.Errors = append(run.Errors, "producer: "+err.Error())
	}
	// The last window must close and its alarm arrive.
	_ = sleep(ctx, 3*time.Second)
	stopBG()
	bg.Wait()
	if markErr != nil || marks[1].at.IsZero() {
		return fail(fmt.Errorf("scrape /metrics: %v (producer too slow for warmup+seconds?)", markErr))
	}
	secs := marks[1].at.Sub(marks[0].at).Seconds()
	run.Seconds = secs
	run.RecordsPerSec = float64(marks[1].put-marks[0].put) / secs
	run.CPUPer1000 = (marks[1].cpu - marks[0].cpu).Seconds() / float64(max(1, marks[1].put-marks[0].put)) * 1000
	run.Write, run.Read = map[string]float64{}, map[string]float64{}
	for k, v := range marks[1].units {
		cls := tableClass(res.app, k[0])
		if cls == "" {
			continue
		}
		d := (v - marks[0].units[k]) / secs / float64(cfg.Shards)
		if k[1] == "write" {
			run.Write[cls] += d
		} else {
			run.Read[cls] += d
		}
	}
	run.ResultLatencyMs = resultLat
	lat, _, _ := alarms.match(bursts)
	run.AlarmLatencyMs = lat
	return run
}

// tableClass maps a table name to its class ("" for other apps' tables).
func tableClass(app, table string) string {
	if table == app {
		return "leases"
	}
	rest, ok := strings.CutPrefix(table, app+"-")
	if !ok || !slices.Contains(TableClasses, rest) {
		return ""
	}
	return rest
}

// scrapeUnits reads shardwatch_dynamodb_units_total from /metrics, by
// (table, kind).
func scrapeUnits(ctx context.Context, addr string) (map[[2]string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseUnits(resp.Body)
}

func parseUnits(r io.Reader) (map[[2]string]float64, error) {
	out := map[[2]string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "shardwatch_dynamodb_units_total{")
		if !ok {
			continue
		}
		labels, val, ok := strings.Cut(line, "} ")
		if !ok {
			continue
		}
		var table, kind string
		for _, l := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(l, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "table":
				table = v
			case "kind":
				kind = v
			}
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", sc.Text(), err)
		}
		out[[2]string{table, kind}] = f
	}
	return out, sc.Err()
}

// watchResults polls the global item of every window of prefix (60 s
// windows) that ends while ctx runs and returns, per window, the time from
// its end to its first final global item.
func watchResults(ctx context.Context, ddb *dynamodb.Client, table, prefix string) []float64 {
	const size = 60 * time.Second
	var out []float64
	next := time.Now().Truncate(size).Add(size) // first window to end after now starts here... its end is next+size
	for {
		start := next
		end := start.Add(size)
		if sleep(ctx, time.Until(end)) != nil {
			return out
		}
		for {
			o, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: aws.String(table), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{
					window.AttrPK: window.Str(prefix + window.FormatTime(start)), window.AttrSK: window.Str(window.GlobalSK),
				},
			})
			if ctx.Err() != nil {
				return out
			}
			if err == nil && o.Item != nil {
				if f, _ := window.GetBool(o.Item, window.AttrFinal); f {
					out = append(out, float64(time.Since(end).Milliseconds()))
					break
				}
			}
			if time.Since(end) > 2*size {
				break
			}
			if sleep(ctx, 100*time.Millisecond) != nil {
				return out
			}
		}
		next = end
	}
}

// CostTable renders runs as Markdown: units per shard-second by table
// class (medians over repetitions per label), $ per shard-month, CPU and
// latencies.
func CostTable(runs []CostRun) string {
	var labels []string
	by := map[string][]CostRun{}
	for _, r := range runs {
		if len(r.Errors) > 0 && r.Seconds == 0 {
			continue
		}
		if _, ok := by[r.Label]; !ok {
			labels = append(labels, r.Label)
		}
		by[r.Label] = append(by[r.Label], r)
	}
	var b strings.Builder
	b.WriteString("| build | rec/s | table | write units / shard-s | read units / shard-s |\n|---|---|---|---|---|\n")
	for _, l := range labels {
		rs := by[l]
		med := func(f func(CostRun) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
		}
		rate := med(func(r CostRun) float64 { return r.RecordsPerSec })
		for _, c := range TableClasses {
			fmt.Fprintf(&b, "| %s | %.0f | %s | %.2f | %.2f |\n", l, rate, c,
				med(func(r CostRun) float64 { return r.Write[c] }), med(func(r CostRun) float64 { return r.Read[c] }))
		}
		fmt.Fprintf(&b, "| %s | %.0f | **leases+results+counters+alarms** | **%.2f** | **%.2f** |\n", l, rate,
			med(func(r CostRun) float64 { w, _ := r.Core(); return w }), med(func(r CostRun) float64 { _, rd := r.Core(); return rd }))
	}
	b.WriteString("\n| build | $ / shard-month without orders | with orders | Kinesis shard | worker CPU s / 1k rec | window end to final result p50 / max ms | put to alarm p50 / max ms |\n|---|---|---|---|---|---|---|\n")
	for _, l := range labels {
		rs := by[l]
		var res, alarm []float64
		var cpu, d, dAll []float64
		for _, r := range rs {
			res = append(res, r.ResultLatencyMs...)
			alarm = append(alarm, r.AlarmLatencyMs...)
			cpu = append(cpu, r.CPUPer1000)
			d = append(d, r.DollarsPerShardMonth(false))
			dAll = append(dAll, r.DollarsPerShardMonth(true))
		}
		mid := func(v []float64) float64 { slices.Sort(v); return (v[(len(v)-1)/2] + v[len(v)/2]) / 2 }
		rp, ap := Summarize(res), Summarize(alarm)
		fmt.Fprintf(&b, "| %s | $%.2f | $%.2f | $%.2f | %.4f | %.0f / %.0f (%d windows) | %.0f / %.0f (%d alarms) |\n", l, mid(d), mid(dAll),
			PriceShardHour*hoursPerMonth, mid(cpu), rp.P50, rp.Max, len(res), ap.P50, ap.Max, len(alarm))
	}
	fmt.Fprintf(&b, "\nPrices: $%.3f per million write units, $%.3f per million read units, $%.3f per shard-hour, %d hours a month.\n",
		PricePerMillionWRU, PricePerMillionRRU, PriceShardHour, hoursPerMonth)
	return b.String()
}
