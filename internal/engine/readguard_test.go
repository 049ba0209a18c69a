package engine

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	deagg "github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
	rec "github.com/awslabs/kinesis-aggregation/go/v2/records"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/shardwatch/shardwatch/internal/faultproxy"
	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/kpl"
	"github.com/shardwatch/shardwatch/pkg/processors"
)

var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// aggregate frames a protobuf body the way the KPL does: magic, body, MD5.
func aggregate(body []byte) []byte {
	sum := md5.Sum(body)
	out := append(append([]byte{}, kplMagic...), body...)
	return append(out, sum[:]...)
}

func marshal(t testing.TB, m *rec.AggregatedRecord) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(protoadapt.MessageV2Of(m))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func u64(v uint64) *uint64 { return &v }

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// badAggregates are KPL records that pass the magic and digest test but
// cannot be de-aggregated. The engine's de-aggregator drops the whole
// batch for the first kinds and panics on the second.
func badAggregates(t testing.TB) map[string][]byte {
	good := marshal(t, &rec.AggregatedRecord{
		PartitionKeyTable: []string{"a", "b"},
		Records: []*rec.Record{
			{PartitionKeyIndex: u64(0), Data: []byte("one")},
			{PartitionKeyIndex: u64(1), Data: []byte("two")},
		},
	})
	return map[string][]byte{
		"truncated protobuf": aggregate(good[:len(good)-3]),
		"garbage body":       aggregate([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}),
		"bad key index": aggregate(marshal(t, &rec.AggregatedRecord{
			PartitionKeyTable: []string{"a"},
			Records:           []*rec.Record{{PartitionKeyIndex: u64(7), Data: []byte("x")}},
		})),
		"bad hash key index": aggregate(marshal(t, &rec.AggregatedRecord{
			PartitionKeyTable: []string{"a"},
			Records:           []*rec.Record{{PartitionKeyIndex: u64(0), ExplicitHashKeyIndex: u64(3), Data: []byte("x")}},
		})),
		"missing required key index": aggregate(marshal(t, &rec.AggregatedRecord{
			PartitionKeyTable: []string{"a"},
			Records:           []*rec.Record{{Data: []byte("x")}},
		})),
		"no user records": aggregate(marshal(t, &rec.AggregatedRecord{PartitionKeyTable: []string{"a"}})),
	}
}

func newGuard(t *testing.T, o ReadGuardOptions) *ReadGuard {
	t.Helper()
	g, err := NewReadGuard(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestEnvelopeRoundTrip(t *testing.T) {
	g := newGuard(t, ReadGuardOptions{})
	orig := append(append([]byte{}, kplMagic...), "rest"...)
	env := g.envelope("kpl: why", orig)
	if kpl.IsAggregated(env) {
		t.Fatal("an envelope must not look like an aggregate to the engine")
	}
	reason, data, ok := g.unwrap(env)
	if !ok || reason != "kpl: why" || !bytes.Equal(data, orig) {
		t.Fatalf("unwrap = %q, %q, %v", reason, data, ok)
	}
	other := newGuard(t, ReadGuardOptions{})
	if _, _, ok := other.unwrap(env); ok {
		t.Error("another process's marker was accepted: envelopes could be forged")
	}
	for _, b := range [][]byte{nil, []byte("plain"), g.marker[:], append(g.marker[:len(g.marker):len(g.marker)], 0xff)} {
		if _, _, ok := g.unwrap(b); ok {
			t.Errorf("unwrap(%q) accepted a non-envelope", b)
		}
	}
}

// The engine's de-aggregator panics on a bad partition-key index; after
// the guard rewrote the batch it neither panics nor drops anything.
func TestGuardedBatchSurvivesEngineDeaggregator(t *testing.T) {
	g := newGuard(t, ReadGuardOptions{})
	bad := badAggregates(t)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the engine's de-aggregator no longer panics on a bad key index; revisit ReadGuard")
			}
		}()
		_, _ = deagg.DeaggregateRecords([]types.Record{{Data: bad["bad key index"], SequenceNumber: aws.String("1"), PartitionKey: aws.String("a")}})
	}()

	agg, err := kpl.NewAggregate(kpl.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"u1", "u2", "u3"} {
		if _, err := agg.Add("pk-"+s, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	enc, _, err := agg.Finish()
	if err != nil {
		t.Fatal(err)
	}
	out := &kinesis.GetRecordsOutput{Records: []types.Record{
		{Data: []byte("plain"), SequenceNumber: aws.String("10"), PartitionKey: aws.String("p")},
		{Data: enc.Data, SequenceNumber: aws.String("11"), PartitionKey: aws.String(enc.PartitionKey)},
	}}
	seq := 12
	for _, b := range bad {
		out.Records = append(out.Records, types.Record{Data: b, SequenceNumber: aws.String(strconv.Itoa(seq)), PartitionKey: aws.String("a")})
		seq++
	}
	if n := g.guardRecords(out); n != len(bad) {
		t.Fatalf("guard rewrote %d records; want %d", n, len(bad))
	}
	users, err := deagg.DeaggregateRecords(out.Records)
	if err != nil {
		t.Fatalf("engine de-aggregation still fails: %v", err)
	}
	if want := 1 + 3 + len(bad); len(users) != want {
		t.Fatalf("engine yields %d records; want %d (plain + 3 user records + one envelope per bad aggregate)", len(users), want)
	}
}

// The shard processor dead-letters the marked aggregates with the reason
// and the original bytes, and passes the rest to the pipeline.
func TestMalformedAggregatesAreDeadLettered(t *testing.T) {
	h := newHarness(t)
	h.w.cfg.Pipeline.Hooks = chainHooks(processors.Hooks{}, h.w.metrics, &h.w.counts)
	g := newGuard(t, ReadGuardOptions{})
	h.w.guard = g
	bad := badAggregates(t)
	var in []types.Record
	in = append(in, recs("1=ok:a")...)
	var names []string
	for name := range bad {
		names = append(names, name)
	}
	for i, name := range names {
		in = append(in, types.Record{Data: g.envelope("kpl: "+name, bad[name]), SequenceNumber: aws.String(strconv.Itoa(2 + i)), PartitionKey: aws.String("k")})
	}
	in = append(in, recs("9=ok:b")...)
	ck := &fakeCheckpointer{}
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: in, Checkpointer: ck})

	if diff := cmp.Diff([]string{"a", "b"}, h.items.keys); diff != "" {
		t.Errorf("pipeline saw (-want +got):\n%s", diff)
	}
	if len(h.dl.got) != len(bad) {
		t.Fatalf("%d dead letters; want %d", len(h.dl.got), len(bad))
	}
	for i, d := range h.dl.got {
		if d.Reason != "kpl: "+names[i] || !bytes.Equal(d.Data, bad[names[i]]) || d.ShardID != "shard-1" {
			t.Errorf("dead letter %d = %q %q; want the reason and the original bytes", i, d.Reason, d.Data)
		}
	}
	if diff := cmp.Diff([]string{"9"}, ck.seqs); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	if got := counterValue(t, h.w.metrics.DeadLettered.WithLabelValues("shard-1", "kpl")); got != float64(len(bad)) {
		t.Errorf("dead_lettered{class=kpl} = %v; want %d", got, len(bad))
	}
}

// proxied returns a kinesis client through a fault proxy in front of the
// local kinesalite, guarded by g.
func proxied(t *testing.T, g *ReadGuard, rules []faultproxy.Rule) (*kinesis.Client, *faultproxy.Proxy) {
	t.Helper()
	base := testenv.Kinesis(t) // skips or fails when the stack is down
	p, err := faultproxy.New(faultproxy.Config{Target: testenv.LocalEndpoints().Kinesis, Rules: rules, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	opts := base.Options()
	c := kinesis.New(opts, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(srv.URL) }, g.Options)
	return c, p
}

func localStream(t *testing.T, n int) (string, string) {
	t.Helper()
	name := testenv.Name(t, "guard")
	testenv.CreateStream(t, name, 1)
	kc := testenv.Kinesis(t)
	for i := 0; i < n; i++ {
		if _, err := kc.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: []byte("r")}); err != nil {
			t.Fatal(err)
		}
	}
	shards, err := kc.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return name, aws.ToString(shards.Shards[0].ShardId)
}

func readAll(ctx context.Context, c *kinesis.Client, stream, shard string) (int, error) {
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		return 0, err
	}
	out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		return 0, err
	}
	return len(out.Records), nil
}

// Throttles and transient failures of GetRecords and GetShardIterator are
// retried inside the client: the engine sees success.
func TestGuardRetriesThrottledReads(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	stream, shard := localStream(t, 3)
	for _, kind := range []faultproxy.Kind{faultproxy.Throughput, faultproxy.KMSThrottling, faultproxy.Throttling, faultproxy.Internal, faultproxy.Unavailable, faultproxy.Drop} {
		t.Run(string(kind), func(t *testing.T) {
			g := newGuard(t, ReadGuardOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
			m, err := NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			g.metrics.Store(m)
			c, p := proxied(t, g, []faultproxy.Rule{{Service: "Kinesis", Operations: []string{"GetRecords", "GetShardIterator"}, Kind: kind, Rate: 0.8}})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			for i := 0; i < 3; i++ {
				n, err := readAll(ctx, c, stream, shard)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if n != 3 {
					t.Fatalf("read %d: %d records; want 3", i, n)
				}
			}
			if p.Stats().Total() == 0 || g.Retries() == 0 {
				t.Fatalf("no fault was injected or retried (stats %+v, retries %d)", p.Stats(), g.Retries())
			}
			var sum float64
			for _, code := range []string{"ProvisionedThroughputExceededException", "KMSThrottlingException", "ThrottlingException", "InternalFailure", "ServiceUnavailable", "transport"} {
				sum += counterValue(t, m.ReadRetries.WithLabelValues("GetRecords", code)) + counterValue(t, m.ReadRetries.WithLabelValues("GetShardIterator", code))
			}
			if sum != float64(g.Retries()) {
				t.Errorf("read retries metric %v; want %d", sum, g.Retries())
			}
			if sum == 0 {
				t.Error("read retries not counted in metrics")
			}
		})
	}
}

// Once the worker stops, a throttled read returns at once with an error the
// engine cannot mistake for a throttle (it would wait and retry).
func TestGuardStopsRetryingAtShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	stream, shard := localStream(t, 1)
	g := newGuard(t, ReadGuardOptions{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	c, _ := proxied(t, g, []faultproxy.Rule{{Service: "Kinesis", Operations: []string{"GetShardIterator"}, Kind: faultproxy.Throughput, Rate: 1}})
	errc := make(chan error, 1)
	go func() {
		_, err := readAll(t.Context(), c, stream, shard)
		errc <- err
	}()
	// Let it retry a few times, then stop.
	deadline := time.Now().Add(10 * time.Second)
	for g.Retries() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g.Retries() < 3 {
		t.Fatal("read was not retried")
	}
	start := time.Now()
	g.stop()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrStopping) {
			t.Errorf("err = %v; want ErrStopping", err)
		}
		var pte *types.ProvisionedThroughputExceededException
		if errors.As(err, &pte) {
			t.Error("the error still unwraps to a throttle: the engine would keep waiting")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("returned %s after stop", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read kept retrying after stop")
	}
}

// After MaxElapsed of continuous throttling the engine gets the throttle
// itself (and applies its own bounded waits).
func TestGuardHandsPersistentThrottleToEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	stream, shard := localStream(t, 1)
	g := newGuard(t, ReadGuardOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxElapsed: 200 * time.Millisecond})
	c, _ := proxied(t, g, []faultproxy.Rule{{Service: "Kinesis", Operations: []string{"GetShardIterator"}, Kind: faultproxy.Throughput, Rate: 1}})
	_, err := readAll(t.Context(), c, stream, shard)
	var pte *types.ProvisionedThroughputExceededException
	if !errors.As(err, &pte) {
		t.Fatalf("err = %v; want ProvisionedThroughputExceededException", err)
	}
}

// Bad aggregates written to kinesalite come back from a guarded GetRecords
// as envelopes; good ones untouched.
func TestGuardRewritesMalformedAggregatesFromKinesis(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	name := testenv.Name(t, "kplguard")
	testenv.CreateStream(t, name, 1)
	kc := testenv.Kinesis(t)
	bad := badAggregates(t)
	for _, b := range bad {
		if _, err := kc.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("a"), Data: b}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kc.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("a"), Data: []byte("plain")}); err != nil {
		t.Fatal(err)
	}
	g := newGuard(t, ReadGuardOptions{})
	c, _ := proxied(t, g, nil)
	shards, err := c.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: shards.Shards[0].ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, r := range out.Records {
		if reason, orig, ok := g.unwrap(r.Data); ok {
			if !kpl.IsAggregated(orig) {
				t.Errorf("envelope does not carry the original aggregate")
			}
			reasons = append(reasons, reason)
		} else if string(r.Data) != "plain" {
			t.Errorf("unexpected record %q", r.Data)
		}
	}
	if len(reasons) != len(bad) || g.Malformed() != int64(len(bad)) {
		t.Fatalf("%d envelopes (%d counted); want %d", len(reasons), g.Malformed(), len(bad))
	}
	for _, r := range reasons {
		if !strings.HasPrefix(r, "kpl: ") {
			t.Errorf("reason %q does not start with kpl:", r)
		}
	}
}

// Whatever a record holds, after the guard the engine's de-aggregator
// neither fails nor panics, and every record yields at least one.
func FuzzGuardedDeaggregation(f *testing.F) {
	for _, b := range badAggregates(f) {
		f.Add(b)
	}
	f.Add([]byte("plain"))
	f.Add(aggregate([]byte{}))
	g, err := NewReadGuard(ReadGuardOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out := &kinesis.GetRecordsOutput{Records: []types.Record{{Data: data, SequenceNumber: aws.String("1"), PartitionKey: aws.String("k")}}}
		g.guardRecords(out)
		users, err := deagg.DeaggregateRecords(out.Records)
		if err != nil {
			t.Fatalf("engine de-aggregation fails after the guard: %v", err)
		}
		if len(users) == 0 {
			t.Fatal("a record vanished")
		}
	})
}

// The guard's cost per GetRecords record: plain records (the common case)
// and valid 50-record aggregates (checked once before the engine
// de-aggregates them again).
func BenchmarkGuardRecords(b *testing.B) {
	g, err := NewReadGuard(ReadGuardOptions{})
	if err != nil {
		b.Fatal(err)
	}
	plain := make([]types.Record, 500)
	for i := range plain {
		plain[i] = types.Record{Data: []byte(`{"ip":"10.0.0.1","path":"/x","status":200,"bytes":512,"timestamp":"2026-11-22T09:41:07Z"}`)}
	}
	agg, err := kpl.NewAggregate(kpl.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 50 {
		if _, err := agg.Add("k"+strconv.Itoa(i%5), plain[0].Data); err != nil {
			b.Fatal(err)
		}
	}
	enc, _, err := agg.Finish()
	if err != nil {
		b.Fatal(err)
	}
	aggs := make([]types.Record, 10)
	for i := range aggs {
		aggs[i] = types.Record{Data: enc.Data, PartitionKey: aws.String("k0")}
	}
	for _, bc := range []struct {
		name string
		recs []types.Record
		per  int
	}{{"plain-500", plain, 500}, {"aggregates-10x50", aggs, 500}} {
		b.Run(bc.name, func(b *testing.B) {
			out := &kinesis.GetRecordsOutput{Records: bc.recs}
			b.ReportAllocs()
			for b.Loop() {
				g.guardRecords(out)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bc.per), "ns/user-record")
		})
	}
}

// validAggregate agrees with kpl.Deaggregate (the full decode) on every
// body: it accepts exactly what de-aggregates into at least one record.
func FuzzValidAggregateMatchesDeaggregate(f *testing.F) {
	for _, b := range badAggregates(f) {
		f.Add(b[len(kplMagic) : len(b)-md5.Size])
	}
	f.Add(marshal(f, &rec.AggregatedRecord{PartitionKeyTable: []string{"a"}, ExplicitHashKeyTable: []string{"1"},
		Records: []*rec.Record{{PartitionKeyIndex: u64(0), ExplicitHashKeyIndex: u64(0), Data: []byte("x"), Tags: []*rec.Tag{{Key: new("k")}}}}}))
	f.Add(marshal(f, &rec.AggregatedRecord{PartitionKeyTable: []string{"a"}, Records: []*rec.Record{{PartitionKeyIndex: u64(0), Data: []byte("x"), Tags: []*rec.Tag{{Value: new("v")}}}}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !kpl.IsAggregated(aggregate(body)) {
			return // an empty body: not an aggregate, the guard never looks
		}
		users, err := kpl.Deaggregate(kpl.UserRecord{PartitionKey: "p", Data: aggregate(body)})
		want := err == nil && len(users) > 0
		if got := validAggregate(body); got != want {
			t.Fatalf("validAggregate = %v; kpl.Deaggregate: %d records, %v", got, len(users), err)
		}
	})
}
