package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// lineDecoder accepts "ok:<path>" and rejects anything else.
type lineDecoder struct{}

func (lineDecoder) Decode(b []byte, r *records.Record) error {
	s := string(b)
	if !strings.HasPrefix(s, "ok:") {
		return errors.New("not ok")
	}
	r.Kind, r.Path = records.KindHit, s[3:]
	return nil
}

// countProc emits one item per record and a final item on close.
type countProc struct {
	closed *[]processors.Reason
	n      int
}

func (p *countProc) Process(_ context.Context, recs []records.Record, out processors.Emitter) error {
	for _, r := range recs {
		p.n++
		out.Put(processors.Item{Table: "t", Key: r.Path})
	}
	return nil
}
func (p *countProc) Flush(context.Context, processors.Emitter) error { return nil }
func (p *countProc) Close(_ context.Context, why processors.Reason, out processors.Emitter) error {
	*p.closed = append(*p.closed, why)
	out.Put(processors.Item{Table: "t", Key: "final"})
	return nil
}

type fakeItems struct {
	mu    sync.Mutex
	keys  []string
	fail  error
	calls int
}

func (f *fakeItems) WriteItems(ctx context.Context, items []processors.Item) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return f.fail
	}
	for _, it := range items {
		f.keys = append(f.keys, it.Key)
	}
	return nil
}

type fakeDL struct{ got []processors.DeadLetter }

func (f *fakeDL) WriteDeadLetters(_ context.Context, d []processors.DeadLetter) error {
	for _, x := range d {
		x.Data = append([]byte(nil), x.Data...)
		f.got = append(f.got, x)
	}
	return nil
}

type fakeCheckpointer struct {
	seqs []string
	err  error
}

func (f *fakeCheckpointer) Checkpoint(seq *string) error {
	if f.err != nil {
		return f.err
	}
	if seq == nil {
		f.seqs = append(f.seqs, "SHARD_END")
	} else {
		f.seqs = append(f.seqs, *seq)
	}
	return nil
}
func (f *fakeCheckpointer) PrepareCheckpoint(*string) (kcl.IPreparedCheckpointer, error) {
	return nil, errors.New("unused")
}

var errLost = errors.New("lease lost")

type fakeLeases struct {
	lost     chan struct{}
	released []string
	claimed  bool
}

func (f *fakeLeases) Lost(string) <-chan struct{} { return f.lost }
func (f *fakeLeases) IsLeaseLost(err error) bool  { return errors.Is(err, errLost) }
func (f *fakeLeases) Claimed(string) bool         { return f.claimed }
func (f *fakeLeases) Token(string) int64          { return 0 }
func (f *fakeLeases) Release(id string) error {
	f.released = append(f.released, id)
	return nil
}

type clock struct{}

func (clock) Now() time.Time { return time.Unix(1700000000, 0) }

type harness struct {
	w      *Worker
	items  *fakeItems
	dl     *fakeDL
	leases *fakeLeases
	closed []processors.Reason
	p      *shardProcessor
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{items: &fakeItems{}, dl: &fakeDL{}, leases: &fakeLeases{lost: make(chan struct{})}}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h.w = &Worker{
		cfg: Config{Stream: "s", WorkerID: "w1", OpenTimeout: time.Second, Pipeline: processors.Config{
			Stream:     "s",
			NewDecoder: func() (processors.Decoder, error) { return lineDecoder{}, nil },
			Processors: []processors.Named{{Name: "count", Factory: func(context.Context, processors.Env) (processors.Processor, error) {
				return &countProc{closed: &h.closed}, nil
			}}},
			Sinks:    processors.Sinks{Items: h.items, DeadLetters: h.dl},
			Clock:    clock{},
			RetryMin: time.Millisecond, RetryMax: time.Millisecond,
		}},
		log: zap.NewNop(), leases: h.leases, metrics: m, baseCtx: context.Background(),
	}
	h.p = &shardProcessor{w: h.w}
	h.p.Initialize(&kcl.InitializationInput{ShardId: "shard-1", ExtendedSequenceNumber: &kcl.ExtendedSequenceNumber{}})
	t.Cleanup(func() { h.p.markLost("test end") })
	return h
}

func recs(seqs ...string) []types.Record {
	var out []types.Record
	for _, s := range seqs {
		parts := strings.SplitN(s, "=", 2)
		out = append(out, types.Record{SequenceNumber: aws.String(parts[0]), Data: []byte(parts[1]), PartitionKey: aws.String("k")})
	}
	return out
}

func TestBatchIsWrittenBeforeCheckpoint(t *testing.T) {
	h := newHarness(t)
	cp := &fakeCheckpointer{}
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("1=ok:a", "2=garbage", "3=ok:b"), Checkpointer: cp})
	if d := cmp.Diff([]string{"a", "b"}, h.items.keys); d != "" {
		t.Errorf("items written (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"3"}, cp.seqs); d != "" {
		t.Errorf("checkpoints (-want +got):\n%s", d)
	}
	if len(h.dl.got) != 1 || h.dl.got[0].Sequence != "2" || string(h.dl.got[0].Data) != "garbage" || h.dl.got[0].Reason != "not ok" {
		t.Errorf("dead letters = %+v; want the garbage record with its reason", h.dl.got)
	}
}

func TestFailedSinkNeverCheckpoints(t *testing.T) {
	h := newHarness(t)
	h.items.fail = errors.New("throttled")
	cp := &fakeCheckpointer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("1=ok:a"), Checkpointer: cp})
	}()
	// The pipeline retries until the lease is lost.
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.items.mu.Lock()
		calls := h.items.calls
		h.items.mu.Unlock()
		if calls >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sink was not retried")
		}
		time.Sleep(time.Millisecond)
	}
	close(h.leases.lost)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("batch did not stop after lease loss")
	}
	if len(cp.seqs) != 0 {
		t.Errorf("checkpointed %v after a failed write", cp.seqs)
	}
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("2=ok:b"), Checkpointer: cp})
	if len(cp.seqs) != 0 {
		t.Errorf("a lost lease still checkpointed %v", cp.seqs)
	}
}

func TestRejectedCheckpointStopsTheTenure(t *testing.T) {
	h := newHarness(t)
	cp := &fakeCheckpointer{err: errLost}
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("1=ok:a"), Checkpointer: cp})
	if d := cmp.Diff([]processors.Reason{processors.LeaseLost}, h.closed); d != "" {
		t.Errorf("close reasons (-want +got):\n%s", d)
	}
	before := len(h.items.keys)
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("2=ok:b"), Checkpointer: &fakeCheckpointer{}})
	if len(h.items.keys) != before {
		t.Errorf("processed a batch after losing the lease")
	}
}

func TestTerminateWritesFinalResultsThenShardEnd(t *testing.T) {
	h := newHarness(t)
	cp := &fakeCheckpointer{}
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("1=ok:a"), Checkpointer: cp})
	h.p.Shutdown(&kcl.ShutdownInput{ShutdownReason: kcl.TERMINATE, Checkpointer: cp})
	if d := cmp.Diff([]string{"a", "final"}, h.items.keys); d != "" {
		t.Errorf("items (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"1", "SHARD_END"}, cp.seqs); d != "" {
		t.Errorf("checkpoints (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]processors.Reason{processors.ShardEnded}, h.closed); d != "" {
		t.Errorf("close reasons (-want +got):\n%s", d)
	}
}

func TestRequestedShutdownFlushes(t *testing.T) {
	h := newHarness(t)
	cp := &fakeCheckpointer{}
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("1=ok:a"), Checkpointer: cp})
	h.p.Shutdown(&kcl.ShutdownInput{ShutdownReason: kcl.REQUESTED, Checkpointer: cp})
	if d := cmp.Diff([]processors.Reason{processors.Shutdown}, h.closed); d != "" {
		t.Errorf("close reasons (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"a", "final"}, h.items.keys); d != "" {
		t.Errorf("items (-want +got):\n%s", d)
	}
}

func TestToRawNumbersAggregateUserRecords(t *testing.T) {
	got := toRaw(nil, "s1", recs("5=x", "5=y", "5=z", "7=w", "8=v", "8=u"))
	var subs []int64
	for _, r := range got {
		subs = append(subs, r.Meta.SubSequence)
	}
	if d := cmp.Diff([]int64{0, 1, 2, 0, 0, 1}, subs); d != "" {
		t.Errorf("sub-sequences (-want +got):\n%s", d)
	}
}

func TestClaimedLeaseIsHandedOverAfterCheckpoint(t *testing.T) {
	h := newHarness(t)
	cp := &fakeCheckpointer{}
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("1=ok:a"), Checkpointer: cp})
	h.leases.claimed = true
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("2=ok:b"), Checkpointer: cp})
	if d := cmp.Diff([]string{"a", "final"}, h.items.keys); d != "" {
		t.Errorf("items (-want +got): the claimed poll's records must be left for the claimant\n%s", d)
	}
	if d := cmp.Diff([]processors.Reason{processors.Shutdown}, h.closed); d != "" {
		t.Errorf("close reasons (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"shard-1"}, h.leases.released); d != "" {
		t.Errorf("released (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"1"}, cp.seqs); d != "" {
		t.Errorf("checkpoints (-want +got):\n%s", d)
	}
}

type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

// With a flush interval, a record's audit line ("results written") and
// its checkpoint wait for the flush that makes its results durable.
func TestAuditAndCheckpointWaitForTheFlush(t *testing.T) {
	h := newHarness(t)
	sc := &stepClock{t: time.Unix(1700000000, 0)}
	h.w.cfg.Pipeline.FlushInterval = 5 * time.Second
	h.w.cfg.Pipeline.Clock = sc
	h.p.pipe = nil // reopen with the settings above
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAuditLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	h.w.auditLog = a
	lines := func() int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), "\n")
	}
	cp := &fakeCheckpointer{}
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("1=ok:a"), Checkpointer: cp}) // first flush is due
	sc.t = sc.t.Add(time.Second)
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Records: recs("2=ok:b", "3=ok:c"), Checkpointer: cp})
	if got := lines(); got != 1 {
		t.Errorf("audit lines before the flush = %d; want 1", got)
	}
	if d := cmp.Diff([]string{"1"}, cp.seqs); d != "" {
		t.Errorf("checkpoints before the flush (-want +got):\n%s", d)
	}
	sc.t = sc.t.Add(5 * time.Second)
	h.p.ProcessRecords(&kcl.ProcessRecordsInput{Checkpointer: cp}) // an idle poll flushes
	if got := lines(); got != 3 {
		t.Errorf("audit lines after the flush = %d; want 3", got)
	}
	if d := cmp.Diff([]string{"1", "3"}, cp.seqs); d != "" {
		t.Errorf("checkpoints after the flush (-want +got):\n%s", d)
	}
}
