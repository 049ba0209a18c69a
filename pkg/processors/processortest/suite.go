package processortest

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// MaxItemBytes is DynamoDB's item size limit.
const MaxItemBytes = 400 * 1024

// StateSizer is implemented by processors that can report how many keys
// they hold; the bounded-state check uses it.
type StateSizer interface{ StateSize() int }

// Suite describes the processor under test.
type Suite struct {
	// Factory builds the processor (already configured, e.g. through its
	// Plugin's Build).
	Factory processors.Factory
	// Records is one shard's input in order, spanning several windows so
	// some close. Meta must be filled (see Sequence).
	Records []records.Record
	// Window is the processor's windowing, used to check that no final
	// item appears before its window is due. Items carry the window
	// package's window_end and final attributes.
	Window window.Config
	// BatchSize is the number of records per Process call (default 100).
	BatchSize int
	// ClockLag is how far the fake clock runs ahead of the newest event
	// time while batches are fed (default 1s).
	ClockLag time.Duration
	// Flood returns the i-th record of a flood of distinct keys inside one
	// window; nil skips the bounded-state check. Meta is filled by the kit.
	Flood func(i int) records.Record
	// FloodSize is the number of flood records (default 100,000).
	FloodSize int
	// MaxStateKeys bounds StateSize() after the flood (required when the
	// processor implements StateSizer).
	MaxStateKeys int
	// MaxItemsPerFlush bounds the items one Flush or Close emits
	// (default 1,000).
	MaxItemsPerFlush int
	// ExactMetrics also requires per-(name, dims, second) metric sums of a
	// restored run to equal the uninterrupted run's.
	ExactMetrics bool
	// Volatile names item attributes allowed to differ between runs.
	Volatile []string
	// Scratch names item kinds (attribute "kind") that are working state
	// a later write supersedes (e.g. deltas of a partial): the restore
	// check leaves them out, as a new owner writes its own.
	Scratch []string
	// Shard is the shard identity (default stream "stream", shard
	// "shardId-000000000001", worker "worker-1").
	Shard processors.Shard
	// Logger for the processor (default zap.NewNop()).
	Logger *zap.Logger
}

func (s *Suite) defaults() {
	if s.BatchSize <= 0 {
		s.BatchSize = 100
	}
	if s.ClockLag <= 0 {
		s.ClockLag = time.Second
	}
	if s.FloodSize <= 0 {
		s.FloodSize = 100_000
	}
	if s.MaxItemsPerFlush <= 0 {
		s.MaxItemsPerFlush = 1000
	}
	if s.Shard == (processors.Shard{}) {
		s.Shard = processors.Shard{Stream: "stream", ShardID: "shardId-000000000001", WorkerID: "worker-1"}
	}
}

// Run runs the conformance checks as subtests of t.
func Run(t *testing.T, s Suite) {
	t.Helper()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s.defaults()
	if s.Factory == nil || len(s.Records) == 0 {
		t.Fatal("processortest: Suite needs a Factory and Records")
	}
	if err := s.Window.Validate("suite"); err != nil {
		t.Fatalf("processortest: Suite.Window: %v", err)
	}
	for i, r := range s.Records {
		if r.Meta.SequenceNumber == "" {
			t.Fatalf("Suite.Records[%d] has no sequence number: restore skips records by position, so wrap the records in processortest.Sequence", i)
		}
	}
	k := &kit{s: s, batches: chunk(s.Records, s.BatchSize)}
	k.watermarks()

	t.Run("deterministic", k.deterministic)
	t.Run("final-only-after-close", k.finalOnlyAfterClose)
	t.Run("lease-lost-emits-nothing", k.leaseLost)
	t.Run("malformed-records", k.malformed)
	t.Run("bounded-state", k.bounded)
	t.Run("restore-after-failover", k.restore)
}

// reporter is the part of testing.T the checks use (tests fake it).
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

type kit struct {
	s       Suite
	batches [][]records.Record
	wm      []time.Time // watermark after batch i
}

func chunk(recs []records.Record, n int) [][]records.Record {
	var out [][]records.Record
	for len(recs) > 0 {
		m := min(n, len(recs))
		out = append(out, recs[:m:m])
		recs = recs[m:]
	}
	return out
}

func (k *kit) watermarks() {
	var wm time.Time
	for _, b := range k.batches {
		for i := range b {
			if et := b[i].EventTime(); et.After(wm) {
				wm = et
			}
		}
		k.wm = append(k.wm, wm)
	}
}

// clockAt is the fake clock while batch i is fed.
func (k *kit) clockAt(i int) time.Time { return k.wm[i].Add(k.s.ClockLag) }

func (k *kit) harness() *Harness {
	return &Harness{
		Factory: k.s.Factory, Store: NewStore(), Clock: NewClock(k.clockAt(0)),
		Shard: k.s.Shard, Logger: k.s.Logger,
	}
}

// run is what one lease does with batches [from, to). check verifies each
// emission against the window rules; all emissions are appended to log.
type runLog struct{ recs []*Recorder }

func (l *runLog) add(r *Recorder) {
	if l != nil && r != nil {
		l.recs = append(l.recs, r)
	}
}

func (k *kit) feed(t *testing.T, h *Harness, p processors.Processor, from, to int, log *runLog) {
	t.Helper()
	ctx := t.Context()
	for i := from; i < to; i++ {
		h.Clock.Set(k.clockAt(i))
		rec, err := h.Batch(ctx, p, k.batches[i])
		log.add(rec)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		k.checkEmission(t, rec, k.wm[i], h.Clock.Now(), fmt.Sprintf("batch %d", i))
	}
}

// finish lets the shard go idle until every window closed, then ends it.
func (k *kit) finish(t *testing.T, h *Harness, p processors.Processor, log *runLog) {
	t.Helper()
	ctx := t.Context()
	step := k.s.Window.Size + k.s.Window.Grace + k.s.Window.Idle + time.Minute
	wm := k.wm[len(k.wm)-1]
	h.Clock.Set(wm.Add(k.s.ClockLag).Add(step))
	for i := range 2 {
		rec, err := h.Flush(ctx, p)
		log.add(rec)
		if err != nil {
			t.Fatalf("idle flush %d: %v", i, err)
		}
		k.checkEmission(t, rec, wm, h.Clock.Now(), "idle flush")
		h.Clock.Advance(step)
	}
	rec, err := h.Close(ctx, p, processors.ShardEnded)
	log.add(rec)
	if err != nil {
		t.Fatalf("close(shard-ended): %v", err)
	}
	k.checkBounds(t, rec, "close(shard-ended)")
}

// checkEmission fails when an item is final before its window is due:
// watermark >= end+grace, or clock >= end+grace+idle.
func (k *kit) checkEmission(t reporter, rec *Recorder, wm, now time.Time, where string) {
	t.Helper()
	k.checkBounds(t, rec, where)
	w := k.s.Window
	for _, it := range rec.Items {
		final, _ := window.GetBool(it.Attrs, window.AttrFinal)
		if !final {
			continue
		}
		end, err := window.GetTime(it.Attrs, window.AttrWindowEnd)
		if err != nil {
			continue // not a windowed item
		}
		due := end.Add(w.Grace)
		if wm.Before(due) && now.Before(due.Add(w.Idle)) {
			t.Errorf("%s: final item %s emitted before its window is due (end %s, watermark %s, clock %s)",
				where, it.Key, end.Format(time.RFC3339), wm.Format(time.RFC3339), now.Format(time.RFC3339))
		}
	}
}

func (k *kit) checkBounds(t reporter, rec *Recorder, where string) {
	t.Helper()
	if n := len(rec.Items); n > k.s.MaxItemsPerFlush {
		t.Errorf("%s: %d items in one call, want <= %d", where, n, k.s.MaxItemsPerFlush)
	}
	for _, it := range rec.Items {
		if it.Table == "" || it.Key == "" {
			t.Errorf("%s: item without Table or Key: %+v", where, it)
		}
		if n := ItemSize(it.Attrs); n > MaxItemBytes {
			t.Errorf("%s: item %s is %d bytes, DynamoDB allows %d", where, it.Key, n, MaxItemBytes)
		}
	}
}

// reference runs every batch through one uninterrupted lease.
func (k *kit) reference(t *testing.T) (*Harness, *runLog) {
	t.Helper()
	h := k.harness()
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	log := &runLog{}
	k.feed(t, h, p, 0, len(k.batches), log)
	k.finish(t, h, p, log)
	return h, log
}

func (k *kit) deterministic(t *testing.T) {
	_, a := k.reference(t)
	_, b := k.reference(t)
	pa, pb := printLog(a), printLog(b)
	if !slices.Equal(pa, pb) { // cmp.Diff only on failure: it is slow on big inputs
		t.Errorf("two runs with the same input and clock differ (-first +second):\n%s", cmp.Diff(pa, pb))
	}
	if pa == nil {
		t.Errorf("the processor emitted nothing for %d records", len(k.s.Records))
	}
}

func (k *kit) finalOnlyAfterClose(t *testing.T) {
	_, log := k.reference(t) // every emission is checked on the way
	var items, finals int
	for _, r := range log.recs {
		for _, it := range r.Items {
			if _, err := window.GetTime(it.Attrs, window.AttrWindowEnd); err != nil {
				continue // not a windowed result (e.g. a cursor)
			}
			items++
			if f, _ := window.GetBool(it.Attrs, window.AttrFinal); f {
				finals++
			}
		}
	}
	if items > 0 && finals == 0 {
		t.Errorf("%d windowed items emitted but none final after every window closed", items)
	}
	// A lease handed over mid-stream (Shutdown) must not finalise open windows.
	h := k.harness()
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	k.feed(t, h, p, 0, 1, nil)
	rec, err := h.Close(t.Context(), p, processors.Shutdown)
	if err != nil {
		t.Fatalf("close(shutdown): %v", err)
	}
	k.checkEmission(t, rec, k.wm[0], h.Clock.Now(), "close(shutdown)")
}

func (k *kit) leaseLost(t *testing.T) {
	h := k.harness()
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	k.feed(t, h, p, 0, max(1, len(k.batches)/2), nil)
	rec, err := h.Close(t.Context(), p, processors.LeaseLost)
	if err != nil {
		t.Fatalf("close(lease-lost): %v", err)
	}
	if rec.Len() != 0 {
		t.Errorf("close(lease-lost) emitted %d items, %d messages, %d metrics; want nothing",
			len(rec.Items), len(rec.Messages), len(rec.Data))
	}
}

// Malformed returns the records the kit feeds to check that odd input
// never panics: zero values, unknown kinds, extreme numbers and times,
// huge strings, missing metadata.
func Malformed() []records.Record {
	long := strings.Repeat("x", 64<<10)
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	return []records.Record{
		{},
		{Kind: records.KindHit},
		{Kind: records.KindOrder},
		{Kind: records.Kind(200), Time: t0},
		{Kind: records.KindHit, Time: t0, Status: -1, Bytes: -5},
		{Kind: records.KindHit, Time: t0, Status: 99999, Bytes: math.MaxInt64},
		{Kind: records.KindHit, Time: t0, Bytes: math.MinInt64, ClientIP: long, Host: long, Event: long, UserAgent: long},
		{Kind: records.KindHit, Time: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)},
		{Kind: records.KindHit, Time: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{Kind: records.KindHit, Time: t0, ClientIP: "\xff\xfe", Host: "ünï\x00côdé", Event: "\x00"},
		{Kind: records.KindOrder, Time: t0, Quantity: math.MinInt64, UnitPrice: math.NaN()},
		{Kind: records.KindOrder, Time: t0, Quantity: math.MaxInt64, UnitPrice: math.Inf(1)},
		{Kind: records.KindOrder, Time: t0, Quantity: 3, UnitPrice: -math.MaxFloat64, CustomerID: long},
		{Kind: records.KindHit, Meta: records.Meta{ArrivalTime: t0, SequenceNumber: "not-a-number", SubSequence: -1}},
	}
}

func (k *kit) malformed(t *testing.T) {
	for i, r := range Malformed() {
		h := k.harness()
		h.Clock.Set(time.Date(2026, 11, 22, 9, 42, 0, 0, time.UTC))
		p, err := h.Start(t.Context())
		if err != nil {
			t.Fatalf("factory: %v", err)
		}
		// Errors are allowed (the pipeline dead-letters); panics are not.
		if _, err := h.Batch(t.Context(), p, []records.Record{r}); err != nil && strings.Contains(err.Error(), "panicked") {
			t.Errorf("record %d: %v", i, err)
		}
		h.Clock.Advance(48 * time.Hour)
		if _, err := h.Flush(t.Context(), p); err != nil && strings.Contains(err.Error(), "panicked") {
			t.Errorf("record %d: %v", i, err)
		}
		rec, err := h.Close(t.Context(), p, processors.ShardEnded)
		if err != nil && strings.Contains(err.Error(), "panicked") {
			t.Errorf("record %d: %v", i, err)
		}
		if rec != nil {
			k.checkBounds(t, rec, fmt.Sprintf("record %d close", i))
		}
	}
}

func (k *kit) bounded(t *testing.T) {
	if k.s.Flood == nil {
		t.Skip("Suite.Flood not set")
	}
	h := k.harness()
	p, err := h.Start(t.Context())
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	const batch = 1000
	buf := make([]records.Record, 0, batch)
	for i := 0; i < k.s.FloodSize; {
		buf = buf[:0]
		for ; i < k.s.FloodSize && len(buf) < batch; i++ {
			r := k.s.Flood(i)
			r.Meta.ShardID = k.s.Shard.ShardID
			r.Meta.SequenceNumber = SeqNum(i)
			if r.Meta.ArrivalTime.IsZero() {
				r.Meta.ArrivalTime = r.Time
			}
			buf = append(buf, r)
		}
		h.Clock.Set(buf[len(buf)-1].EventTime().Add(k.s.ClockLag))
		rec, err := h.Batch(t.Context(), p, buf)
		if err != nil {
			t.Fatalf("flood batch ending at %d: %v", i, err)
		}
		k.checkBounds(t, rec, fmt.Sprintf("flood batch ending at %d", i))
	}
	if ss, ok := p.(StateSizer); ok {
		switch n := ss.StateSize(); {
		case k.s.MaxStateKeys <= 0:
			t.Errorf("processor reports StateSize %d but Suite.MaxStateKeys is unset", n)
		case n > k.s.MaxStateKeys:
			t.Errorf("StateSize after a flood of %d keys = %d, want <= %d", k.s.FloodSize, n, k.s.MaxStateKeys)
		}
	}
	rec, err := h.Close(t.Context(), p, processors.Shutdown)
	if err != nil {
		t.Fatalf("close(shutdown): %v", err)
	}
	k.checkBounds(t, rec, "flood close(shutdown)")
}

// restore checks that a new owner resuming from the stored partials ends
// with the same results as an uninterrupted lease, for several ways the
// first lease can end.
func (k *kit) restore(t *testing.T) {
	ref, refLog := k.reference(t)
	want := k.dump(ref.Store)
	wantMetrics := metricSums(refLog)

	n := len(k.batches)
	cuts := slices.Compact([]int{n / 3, (2 * n) / 3})
	type scenario struct {
		name string
		// first runs the first lease over batches [0, cut] and returns the
		// batch the next owner resumes from.
		first func(t *testing.T, h *Harness, p processors.Processor, cut int, log *runLog) int
	}
	scenarios := []scenario{
		{"crash-after-write", func(t *testing.T, h *Harness, p processors.Processor, cut int, log *runLog) int {
			k.feed(t, h, p, 0, cut+1, log)
			return cut // batch cut was written but not checkpointed
		}},
		{"crash-before-write", func(t *testing.T, h *Harness, p processors.Processor, cut int, log *runLog) int {
			k.feed(t, h, p, 0, cut, log)
			h.Clock.Set(k.clockAt(cut))
			if _, err := h.Emit(t.Context(), p, k.batches[cut]); err != nil {
				t.Fatalf("batch %d: %v", cut, err)
			}
			return cut // its output never reached the store
		}},
		{"shutdown-handoff", func(t *testing.T, h *Harness, p processors.Processor, cut int, log *runLog) int {
			k.feed(t, h, p, 0, cut+1, log)
			rec, err := h.Close(t.Context(), p, processors.Shutdown)
			log.add(rec)
			if err != nil {
				t.Fatalf("close(shutdown): %v", err)
			}
			k.checkEmission(t, rec, k.wm[cut], h.Clock.Now(), "close(shutdown)")
			return cut + 1
		}},
		{"lease-lost", func(t *testing.T, h *Harness, p processors.Processor, cut int, log *runLog) int {
			k.feed(t, h, p, 0, cut+1, log)
			if _, err := h.Close(t.Context(), p, processors.LeaseLost); err != nil {
				t.Fatalf("close(lease-lost): %v", err)
			}
			return cut + 1 // batch cut was checkpointed before the loss
		}},
	}
	for _, sc := range scenarios {
		for _, cut := range cuts {
			t.Run(fmt.Sprintf("%s/at-batch-%d", sc.name, cut), func(t *testing.T) {
				h := k.harness()
				p, err := h.Start(t.Context())
				if err != nil {
					t.Fatalf("factory: %v", err)
				}
				log := &runLog{}
				from := sc.first(t, h, p, cut, log)
				h.Clock.Set(k.clockAt(min(from, n-1)))
				h2 := *h // same store and clock, new lease
				h2.Shard.WorkerID += "-next"
				p2, err := h2.Start(t.Context())
				if err != nil {
					t.Fatalf("factory of the next owner: %v", err)
				}
				k.feed(t, &h2, p2, from, n, log)
				k.finish(t, &h2, p2, log)
				if got := k.dump(h.Store); !reflect.DeepEqual(want, got) {
					t.Errorf("stored results differ from an uninterrupted run (-want +got):\n%s", cmp.Diff(want, got))
				}
				if got := metricSums(log); k.s.ExactMetrics && !maps.Equal(wantMetrics, got) {
					t.Errorf("metric sums differ from an uninterrupted run (-want +got):\n%s", cmp.Diff(wantMetrics, got))
				}
			})
		}
	}
}

// dump is the store's content the restore check compares: without
// Volatile attributes and Scratch items.
func (k *kit) dump(st *Store) map[string]map[string]map[string]string {
	d := st.Dump(k.s.Volatile...)
	for _, items := range d {
		maps.DeleteFunc(items, func(_ string, it map[string]string) bool {
			kind, ok := strings.CutPrefix(it[window.AttrKind], "S:")
			return ok && slices.Contains(k.s.Scratch, kind)
		})
	}
	return d
}

// metricSums adds up Value and Count per (name, unit, dims, time).
func metricSums(l *runLog) map[string][2]float64 {
	out := map[string][2]float64{}
	for _, r := range l.recs {
		for _, d := range r.Data {
			k := datumKey(d)
			s := out[k]
			s[0] += d.Value
			s[1] += max(d.Count, 1)
			out[k] = s
		}
	}
	return out
}

func datumKey(d processors.Datum) string {
	var b strings.Builder
	b.WriteString(d.Name + " " + d.Unit + " " + d.Time.UTC().Format(time.RFC3339Nano))
	for _, dim := range d.Dims {
		b.WriteString(" " + dim.Name + "=" + dim.Value)
	}
	return b.String()
}

// printLog renders every emission of a run, in order, for comparison.
func printLog(l *runLog) []string {
	var out []string
	for i, r := range l.recs {
		for _, it := range r.Items {
			out = append(out, fmt.Sprintf("%d item %s %s %s", i, it.Table, it.Key, printAttrs(it.Attrs)))
		}
		for _, m := range r.Messages {
			keys := slices.Sorted(maps.Keys(m.Attributes))
			attrs := make([]string, len(keys))
			for j, key := range keys {
				attrs[j] = key + "=" + m.Attributes[key]
			}
			out = append(out, fmt.Sprintf("%d message %s %q %q %v", i, m.Topic, m.Subject, m.Body, attrs))
		}
		for _, d := range r.Data {
			out = append(out, fmt.Sprintf("%d metric %s value=%g count=%g", i, datumKey(d), d.Value, d.Count))
		}
	}
	return out
}

func printAttrs(m map[string]types.AttributeValue) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + Printable(m[k])
	}
	return strings.Join(parts, " ")
}

// ItemSize estimates an item's DynamoDB size (window.ItemSize).
func ItemSize(m map[string]types.AttributeValue) int { return window.ItemSize(m) }
