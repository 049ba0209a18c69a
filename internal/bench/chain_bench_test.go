package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/botdetect"
	"github.com/shardwatch/shardwatch/pkg/processors/builtin"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/sinks/dynamo"
	"github.com/shardwatch/shardwatch/pkg/sinks/emf"
	snssink "github.com/shardwatch/shardwatch/pkg/sinks/sns"
)

const benchShard = "shardId-000000000001"

var benchApp = processors.AppInfo{
	App: "bench", Stream: "bench", Namespace: "Shardwatch",
	AlarmTopicARN: "arn:aws:sns:us-east-1:000000000000:bench-alarms",
	Tables:        processors.TablesFor("bench"),
}

// memDynamoDB is the DynamoDB behind the chain's item and dead-letter
// writers: BatchWriteItem applies the puts to an in-memory store, which
// the processors then Query (restores and global merges), as they would
// DynamoDB.
type memDynamoDB struct {
	store *processortest.Store
	items atomic.Int64
	// units, when set, sums write units (1 per started KB of each item)
	// by table and result name (the partition key up to its first '#').
	units map[string]float64
	mu    sync.Mutex // guards units: the item writer writes chunks in parallel
}

func (m *memDynamoDB) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	for table, reqs := range in.RequestItems {
		its := make([]processors.Item, 0, len(reqs))
		for _, r := range reqs {
			if r.PutRequest != nil {
				its = append(its, processors.Item{Table: table, Attrs: r.PutRequest.Item})
			}
		}
		if err := m.store.Apply(its); err != nil {
			return nil, err
		}
		m.items.Add(int64(len(its)))
		m.mu.Lock()
		if m.units != nil {
			for _, it := range its {
				m.units[table+" "+resultOf(it.Attrs)] += math.Ceil(float64(window.ItemSize(it.Attrs)) / 1024)
			}
		}
		m.mu.Unlock()
	}
	return &dynamodb.BatchWriteItemOutput{}, nil
}

// memSNS accepts every message.
type memSNS struct{ published atomic.Int64 }

func (m *memSNS) Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error) {
	m.published.Add(1)
	return &sns.PublishOutput{}, nil
}

func (m *memSNS) PublishBatch(_ context.Context, in *sns.PublishBatchInput, _ ...func(*sns.Options)) (*sns.PublishBatchOutput, error) {
	m.published.Add(int64(len(in.PublishBatchRequestEntries)))
	out := &sns.PublishBatchOutput{}
	for _, e := range in.PublishBatchRequestEntries {
		out.Successful = append(out.Successful, snstypes.PublishBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// chain is one shard's whole hot path as the consumer wires it: a
// records decoder, every built-in processor with default settings, and
// the real sinks (DynamoDB item batching, EMF metrics, SNS batching, dead
// letters) over in-memory backends.
type chain struct {
	cfg   processors.Config
	clock *processortest.Clock
	det   *botdetect.Detector
	ddb   *memDynamoDB
	sns   *memSNS
	pipe  *processors.ShardPipeline
}

// uaCache selects the User-Agent cache a chain pass starts with.
type uaCache int

const (
	uaWarm    uaCache = iota // shared cache already holds the log's User-Agents
	uaCold                   // a new, empty cache per pass over the log
	uaNoCache                // a one-entry cache: nearly every lookup misses
)

func newChain(tb testing.TB, format records.Format) *chain {
	tb.Helper()
	c := &chain{clock: processortest.NewClock(time.Time{}), sns: &memSNS{}}
	c.ddb = &memDynamoDB{store: processortest.NewStore()}
	items, err := dynamo.NewItemWriter(c.ddb, dynamo.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	dls, err := dynamo.NewDeadLetterWriter(c.ddb, dynamo.DeadLetterOptions{Table: benchApp.Tables.DeadLetter, Clock: c.clock})
	if err != nil {
		tb.Fatal(err)
	}
	metrics, err := emf.New(io.Discard, emf.Options{Namespace: benchApp.Namespace})
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := snssink.New(c.sns, snssink.Options{TopicARN: benchApp.AlarmTopicARN})
	if err != nil {
		tb.Fatal(err)
	}
	c.cfg = processors.Config{
		Stream:     benchApp.Stream,
		NewDecoder: func() (processors.Decoder, error) { return records.NewDecoder(format) },
		Skip:       func(err error) bool { return errors.Is(err, records.ErrHeader) },
		Sinks:      processors.Sinks{Items: items, Messages: pub, Metrics: metrics, DeadLetters: dls},
		Store:      c.ddb.store,
		Clock:      c.clock,
	}
	c.setDetector(tb, uaWarm)
	return c
}

// setDetector (re)builds the processors list around a User-Agent
// detector: botdetect gets det, the others come from their plugins with
// default settings, in the built-in order.
func (c *chain) setDetector(tb testing.TB, mode uaCache) {
	tb.Helper()
	size := botdetect.DefaultCacheSize
	if mode == uaNoCache {
		size = 1
	}
	det, err := botdetect.NewDetector(botdetect.UAConfig{CacheSize: size})
	if err != nil {
		tb.Fatal(err)
	}
	c.det = det
	reg, err := processors.NewRegistry(builtin.Plugins()...)
	if err != nil {
		tb.Fatal(err)
	}
	// A new slice: a pipeline keeps the one it was opened with.
	c.cfg.Processors = nil
	for _, name := range reg.Names() {
		var f processors.Factory
		if name == botdetect.Name {
			f, err = botdetect.NewFactory(botdetect.DefaultConfig(), benchApp, det)
		} else {
			f, err = reg.Build(name, nil, benchApp)
		}
		if err != nil {
			tb.Fatalf("build %s: %v", name, err)
		}
		c.cfg.Processors = append(c.cfg.Processors, processors.Named{Name: name, Factory: f})
	}
}

// open starts a new lease on a fresh store (the data's event time starts
// over with every pass, so nothing may carry over).
func (c *chain) open(tb testing.TB) {
	tb.Helper()
	c.ddb.store = processortest.NewStore()
	c.cfg.Store = c.ddb.store
	p, err := processors.Open(context.Background(), c.cfg, processors.Shard{Stream: benchApp.Stream, ShardID: benchShard, WorkerID: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	c.pipe = p
}

func (c *chain) close(tb testing.TB) {
	tb.Helper()
	if c.pipe != nil {
		if err := c.pipe.Close(context.Background(), processors.LeaseLost); err != nil {
			tb.Fatal(err)
		}
		c.pipe = nil
	}
}

// rawShard turns payload lines into a shard's records: sequence numbers
// in order and the event time each line decodes to (the fake clock
// follows it, as the wall clock follows a live stream).
func rawShard(tb testing.TB, format records.Format, payloads [][]byte) ([]processors.Raw, []time.Time) {
	tb.Helper()
	dec, err := records.NewDecoder(format)
	if err != nil {
		tb.Fatal(err)
	}
	raws := make([]processors.Raw, len(payloads))
	times := make([]time.Time, len(payloads))
	var last time.Time
	var r records.Record
	for i, p := range payloads {
		raws[i] = processors.Raw{Data: p, Meta: records.Meta{
			ShardID: benchShard, SequenceNumber: processortest.SeqNum(i), PartitionKey: strconv.Itoa(i % 64),
		}}
		if err := dec.Decode(p, &r); err == nil && r.Time.After(last) {
			last = r.Time
		}
		times[i] = last
		raws[i].Meta.ArrivalTime = last
	}
	if last.IsZero() {
		tb.Fatal("no record with an event time")
	}
	for i := range times { // header lines before the first timed record
		if times[i].IsZero() {
			times[i], raws[i].Meta.ArrivalTime = last, last
		}
	}
	return raws, times
}

// runChain drives the chain over payloads pass after pass. Each pass is a
// new lease (fresh processors and store); with uaCold or uaNoCache it also
// gets a new User-Agent cache. It reports the cache hit ratio seen by the
// timed batches as ua-hit-%.
func runChain(b *testing.B, format records.Format, payloads [][]byte, mode uaCache, flush time.Duration) {
	c := newChain(b, format)
	c.cfg.FlushInterval = flush
	raws, times := rawShard(b, format, payloads)
	ctx := context.Background()
	process := func(lo, hi int) {
		c.clock.Set(times[hi-1])
		if err := c.pipe.Process(ctx, raws[lo:hi]); err != nil {
			b.Fatal(err)
		}
	}
	if mode == uaWarm { // one untimed pass fills the shared cache
		c.open(b)
		for lo := 0; lo < len(raws); lo += batchSize {
			process(lo, min(lo+batchSize, len(raws)))
		}
		c.close(b)
	}
	var hits, misses uint64
	var h0 botdetect.CacheStats
	runBatches(b, workload{
		n: len(raws),
		start: func() {
			if mode != uaWarm {
				c.setDetector(b, mode)
			}
			c.open(b)
			h0 = c.det.Stats()
		},
		batch: process,
		end: func() {
			s := c.det.Stats()
			hits += s.Hits - h0.Hits
			misses += s.Misses - h0.Misses
			c.close(b)
		},
	})
	if hits+misses > 0 {
		b.ReportMetric(100*float64(hits)/float64(hits+misses), "ua-hit-%")
	}
	if c.ddb.items.Load() == 0 {
		b.Fatal("the chain wrote no items")
	}
}

// BenchmarkChain is the whole per-shard hot path on real data: decode
// (format auto, the consumer default), every built-in processor, and sink
// batching into in-memory backends, 250 records per batch with a flush per
// batch. Budgets (issue 6): <= 1 us CPU/record warm, <= 4 us cold, <= 8
// allocs/record.
//
// "full" inputs are re-timed to 1,000 records per second, a shard's write
// limit: the load at which CPU per record matters and at which the budgets
// are checked. "recorded" inputs keep their own timing (the Zaker log has
// ~4 records/s), so per-second and per-window costs (metric lines, partial
// items) are shared by 250 times fewer records. Every chain runs with the
// consumer's default flush_interval (8 s: one cadence flush per 32
// batches, plus the urgent flushes of windows closing and orders);
// "warm-flush1s" and "warm-flush0" (a flush after every batch, the
// default before issue 16) show what the cadence is worth.
func BenchmarkChain(b *testing.B) {
	zaker := cached("zaker", func(tb testing.TB) [][]byte { return lines(tb, zakerFile) })
	zakerFull := cached("zaker/full", func(tb testing.TB) [][]byte { return retime(tb, lines(tb, zakerFile), fullRate) })
	clickFull := cached("clickstream/full", func(tb testing.TB) [][]byte { return retime(tb, clickstreamLines(tb), fullRate) })
	ordersFull := cached("orders/full", func(tb testing.TB) [][]byte { return retime(tb, lines(tb, ordersFile), fullRate) })
	for _, tc := range []struct {
		name  string
		input func(testing.TB) [][]byte
		mode  uaCache
		// flush is the pipeline's flush_interval (0: after every batch;
		// defaultFlush: the consumer's default).
		flush time.Duration
	}{
		{"zaker/full/warm", zakerFull, uaWarm, defaultFlush},
		{"zaker/full/cold", zakerFull, uaCold, defaultFlush},
		{"zaker/full/nocache", zakerFull, uaNoCache, defaultFlush},
		{"zaker/full/warm-flush1s", zakerFull, uaWarm, time.Second},
		{"zaker/full/warm-flush0", zakerFull, uaWarm, 0},
		{"zaker/recorded/warm", zaker, uaWarm, defaultFlush},
		{"zaker/recorded/cold", zaker, uaCold, defaultFlush},
		{"clickstream/full/warm", clickFull, uaWarm, defaultFlush},
		{"orders/full/warm", ordersFull, uaWarm, defaultFlush},
		{"orders/recorded/warm", cached("orders", fileLines(ordersFile)), uaWarm, defaultFlush},
	} {
		b.Run(tc.name, func(b *testing.B) { runChain(b, records.FormatAuto, tc.input(b), tc.mode, tc.flush) })
	}
}

// inputs memoises benchmark inputs: the framework calls a benchmark
// function several times while it sizes b.N, and re-timing the orders
// file each time costs more than the measurement.
var inputs sync.Map // name -> [][]byte

// cached returns f, computed once per name. The payloads are only read.
func cached(name string, f func(testing.TB) [][]byte) func(testing.TB) [][]byte {
	return func(tb testing.TB) [][]byte {
		if v, ok := inputs.Load(name); ok {
			return v.([][]byte)
		}
		v := f(tb)
		inputs.Store(name, v)
		return v
	}
}

// fullRate is a Kinesis shard's write limit in records per second.
const fullRate = 1000

// defaultFlush is the consumer's default flush_interval.
const defaultFlush = config.DefaultFlushInterval

// Timestamps as the three formats write them: combined log
// "[22/Jan/2019:03:56:16 +0330]", clickstream JSON RFC 3339 with
// milliseconds, order CSV "2010-12-01 08:26:00".
var (
	combinedTime = regexp.MustCompile(`\[\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]`)
	jsonTime     = regexp.MustCompile(`"timestamp":"[^"]+"`)
	orderTime    = regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}`)
)

// retime rewrites each line's timestamp so the lines arrive at rate
// records per second of event time, in file order, starting at the
// Zaker log's first second. Everything else in the line is unchanged.
func retime(tb testing.TB, in [][]byte, rate int) [][]byte {
	tb.Helper()
	t0 := time.Date(2019, 1, 22, 0, 26, 16, 0, time.UTC)
	out := make([][]byte, 0, len(in))
	for i, l := range in {
		t := t0.Add(time.Duration(i) * time.Second / time.Duration(rate))
		var n []byte
		switch {
		case combinedTime.Match(l):
			n = combinedTime.ReplaceAllLiteral(l, []byte(t.Format("[02/Jan/2006:15:04:05 -0700]")))
		case jsonTime.Match(l):
			n = jsonTime.ReplaceAllLiteral(l, []byte(`"timestamp":"`+t.Format("2006-01-02T15:04:05.000Z07:00")+`"`))
		case orderTime.Match(l):
			n = orderTime.ReplaceAll(l, []byte(t.Format("2006-01-02 15:04:05")))
		default:
			n = l // a header or a line without a time: kept as is
		}
		out = append(out, n)
	}
	return out
}

// clickHit is the clickstream schema as a producer marshals it.
type clickHit struct {
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	Referer   string `json:"referer"`
	SessionID string `json:"session_id"`
	Timestamp string `json:"timestamp"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	Bytes     int64  `json:"bytes"`
	Host      string `json:"host"`
	Event     string `json:"event"`
	Method    string `json:"method"`
}

// clickstreamLines re-encodes the Zaker hits as JSON clickstream hits.
func clickstreamLines(tb testing.TB) [][]byte {
	tb.Helper()
	var d records.CombinedDecoder
	var out [][]byte
	for i, l := range lines(tb, zakerFile) {
		var r records.Record
		if err := d.Decode(l, &r); err != nil {
			continue
		}
		ev := "pageview"
		if i%5 == 0 {
			ev = "add_to_cart"
		}
		j, err := json.Marshal(clickHit{
			IP: r.ClientIP, UserAgent: r.UserAgent, Referer: r.Referer, SessionID: "s-" + strconv.Itoa(i%97),
			Timestamp: r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Path: r.Path, Status: r.Status, Bytes: r.Bytes,
			Host: "www.zanbil.ir", Event: ev, Method: r.Method,
		})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}
