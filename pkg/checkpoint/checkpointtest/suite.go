// Package checkpointtest is the conformance suite of the checkpoint store:
// Run drives two or more Store instances, as separate workers with their
// own clocks, against one lease table of whatever DynamoDB the caller
// provides (DynamoDB Local in CI, the in-memory fake for quick runs).
package checkpointtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	kclcfg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
	kcllogger "github.com/vmware/vmware-go-kcl-v2/logger"

	"github.com/shardwatch/shardwatch/pkg/checkpoint"
)

// Deps is what one subtest needs: a client and a table name of its own
// that does not exist yet (the stores create it). The provider removes the
// table when the test ends (t.Cleanup).
type Deps struct {
	DynamoDB  checkpoint.DynamoDBAPI
	TableName string
}

// Timing of the suite's stores; the clocks are fake, so nothing waits.
const (
	Failover = 10 * time.Second
	// RenewAfter: a lease written this long ago is renewed (FailoverTime/2);
	// younger, a renewal writes nothing.
	RenewAfter = Failover / 2
	// SnapshotTTL: advancing a worker's clock by this forces a new Scan.
	SnapshotTTL = time.Second
)

// Run runs every conformance test; newDeps is called once per subtest
// (the concurrent-Init test calls it four times).
func Run(t *testing.T, newDeps func(t *testing.T) Deps) {
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) Deps)
	}{
		{"TakeRenewRelease", testTakeRenewRelease},
		{"ExpiryOnLocalClockNotLeaseTimeout", testExpiryOnLocalClock},
		{"ZombieCheckpointFenced", testZombieFenced},
		{"TakeRaceLearnsCurrentRow", testTakeRace},
		{"ReleaseHandsOverAtOnce", testReleaseHandsOver},
		{"CheckpointNeverBackwards", testNeverBackwards},
		{"ShardEndIsFinal", testShardEndFinal},
		{"MergeChildWaitsForBothParents", testMergeParents},
		{"ParentGoneFromStream", testParentGone},
		{"LocalExpiryEndsTenure", testLocalExpiry},
		{"LeftoverOfEarlierIncarnation", testLeftover},
		{"OneScanPerPass", testOneScanPerPass},
		{"RemoveLeaseInfo", testRemoveLeaseInfo},
		{"GetLeaseOwnerAndStealing", testOwnerAndStealing},
		{"ReleaseAll", testReleaseAll},
		{"ConcurrentInit", testConcurrentInit},
		{"MigrationFromVmwareCheckpointer", testMigration},
		{"ClaimsSeveralAndReservesHandOver", testClaimsSeveral},
		{"TakeAheadRenewedUntilAdopted", testTakeAhead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDeps) })
	}
}

// worker is one store plus the engine-side shard cache it would see.
type worker struct {
	t      *testing.T
	id     string
	store  *checkpoint.Store
	clock  *Clock
	db     *CountingDB
	shards *Shards
	status map[string]*par.ShardStatus
}

var epoch = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func newWorker(t *testing.T, d Deps, id string, shards *Shards, start time.Time) *worker {
	t.Helper()
	return newWorkerWith(t, d, id, shards, start, func(*checkpoint.Config) {})
}

func newWorkerWith(t *testing.T, d Deps, id string, shards *Shards, start time.Time, tweak func(*checkpoint.Config)) *worker {
	t.Helper()
	clock := NewClock(start)
	db := NewCountingDB(d.DynamoDB)
	cfg := checkpoint.Config{
		TableName: d.TableName, WorkerID: id, StreamName: "stream",
		FailoverTime: Failover, SnapshotTTL: SnapshotTTL,
	}
	tweak(&cfg)
	s, err := checkpoint.New(t.Context(), cfg, checkpoint.Deps{DynamoDB: db, Shards: shards, Clock: clock})
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	if err := s.Init(); err != nil {
		t.Fatalf("Init(%s): %v", id, err)
	}
	return &worker{t: t, id: id, store: s, clock: clock, db: db, shards: shards, status: map[string]*par.ShardStatus{}}
}

// shard returns the engine's ShardStatus for id (parent from the listing).
func (w *worker) shard(id string) *par.ShardStatus {
	if s, ok := w.status[id]; ok {
		return s
	}
	s := &par.ShardStatus{ID: id, Mux: &sync.RWMutex{}}
	w.shards.mu.Lock()
	for _, sh := range w.shards.shards {
		if sh.ID == id {
			s.ParentShardId = sh.Parent
		}
	}
	w.shards.mu.Unlock()
	w.status[id] = s
	return s
}

// take does what the engine's event loop does for a shard it does not
// own: FetchCheckpoint, skip at SHARD_END, GetLease.
func (w *worker) take(id string) error {
	s := w.shard(id)
	if s.GetLeaseOwner() == w.id {
		w.t.Fatalf("%s: take(%s) but the engine already records it as owned", w.id, id)
	}
	if err := w.store.FetchCheckpoint(s); err != nil && err != chk.ErrSequenceIDNotFound {
		return err
	}
	if s.GetCheckpoint() == chk.ShardEnd {
		return errShardEndSkipped
	}
	return w.store.GetLease(s, w.id)
}

var errShardEndSkipped = errors.New("engine skips a shard at SHARD_END")

func (w *worker) mustTake(id string) {
	w.t.Helper()
	if err := w.take(id); err != nil {
		w.t.Fatalf("%s: take %s: %v", w.id, id, err)
	}
}

// notAcquired asserts the engine would move on quietly.
func (w *worker) notAcquired(id string) {
	w.t.Helper()
	err := w.take(id)
	if !errors.As(err, &chk.ErrLeaseNotAcquired{}) {
		w.t.Fatalf("%s: take %s: got %v, want an error the engine reads as ErrLeaseNotAcquired", w.id, id, err)
	}
	if _, held := w.store.Lease(id); held {
		w.t.Fatalf("%s: holds %s after a failed take", w.id, id)
	}
}

// renew is the engine's renewal goroutine calling GetLease.
func (w *worker) renew(id string) error { return w.store.GetLease(w.shard(id), w.id) }

// checkpoint is the record processor's Checkpoint(seq).
func (w *worker) checkpoint(id, seq string) error {
	s := w.shard(id)
	s.SetCheckpoint(seq)
	return w.store.CheckpointSequence(s)
}

// release is the engine's releaseLease.
func (w *worker) release(id string) error {
	w.shard(id).SetLeaseOwner("")
	return w.store.RemoveLeaseOwner(id)
}

// pass moves the worker to its next event-loop pass (fresh snapshot).
func (w *worker) pass() { w.clock.Advance(SnapshotTTL) }

// rowView is the part of a lease row the suite checks.
type rowView struct {
	Exists     bool
	Owner      string
	Counter    string
	Checkpoint string
	Parent     string
	Adjacent   string
}

func readRow(t *testing.T, d Deps, id string) rowView {
	t.Helper()
	out, err := d.DynamoDB.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String(d.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"ShardID": &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		t.Fatalf("GetItem %s: %v", id, err)
	}
	if out.Item == nil {
		return rowView{}
	}
	s := func(k string) string {
		switch v := out.Item[k].(type) {
		case *types.AttributeValueMemberS:
			return v.Value
		case *types.AttributeValueMemberN:
			return v.Value
		}
		return ""
	}
	return rowView{Exists: true, Owner: s("AssignedTo"), Counter: s("LeaseCounter"), Checkpoint: s("Checkpoint"),
		Parent: s("ParentShardId"), Adjacent: s("AdjacentParentShardId")}
}

func wantRow(t *testing.T, d Deps, id string, want rowView) {
	t.Helper()
	if diff := cmp.Diff(want, readRow(t, d, id)); diff != "" {
		t.Fatalf("row %s (-want +got):\n%s", id, diff)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func mustLeaseLost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, checkpoint.ErrLeaseLost) {
		t.Fatalf("%s: got %v, want ErrLeaseLost", what, err)
	}
}

func testTakeRenewRelease(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	a := newWorker(t, d, "A", NewShards(Shard{ID: "s0"}), epoch)
	a.mustTake("s0")
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "A", Counter: "1"})
	if got := a.shard("s0").GetLeaseOwner(); got != "A" {
		t.Fatalf("engine AssignedTo = %q, want A", got)
	}
	// A held shard with no checkpoint reports the engine's sentinel as is.
	if err := a.store.FetchCheckpoint(a.shard("s0")); err != chk.ErrSequenceIDNotFound {
		t.Fatalf("FetchCheckpoint on a fresh lease: %v, want ErrSequenceIDNotFound", err)
	}
	lease, ok := a.store.Lease("s0")
	if !ok || closed(lease.Lost()) {
		t.Fatalf("Lease(s0) = %v, %v: want a live tenure", lease, ok)
	}
	// Just taken: a renewal has nothing to do.
	if err := a.renew("s0"); err != nil {
		t.Fatalf("renew: %v", err)
	}
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "A", Counter: "1"})
	for _, want := range []string{"2", "3"} {
		a.clock.Advance(RenewAfter)
		if err := a.renew("s0"); err != nil {
			t.Fatalf("renew: %v", err)
		}
		wantRow(t, d, "s0", rowView{Exists: true, Owner: "A", Counter: want})
	}
	if err := a.checkpoint("s0", "100"); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	held := a.store.Held()
	if len(held) != 1 || held[0].ShardID != "s0" || held[0].Counter != 4 || held[0].Checkpoint != "100" || held[0].LastCheckpoint.IsZero() {
		t.Fatalf("Held() = %+v, want s0 at counter 4, checkpoint 100", held)
	}
	if err := a.release("s0"); err != nil {
		t.Fatalf("release: %v", err)
	}
	wantRow(t, d, "s0", rowView{Exists: true, Counter: "5", Checkpoint: "100"})
	if !closed(lease.Lost()) {
		t.Fatal("Lost() not closed after release")
	}
	if h := a.store.Held(); len(h) != 0 {
		t.Fatalf("Held() after release = %+v", h)
	}
	mustLeaseLost(t, "renew after release", a.store.GetLease(&par.ShardStatus{ID: "s0", AssignedTo: "A", Mux: &sync.RWMutex{}}, "A"))
}

func testExpiryOnLocalClock(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"})
	a := newWorker(t, d, "A", shards, epoch)
	// B's wall clock runs an hour ahead: A's LeaseTimeout looks long past.
	b := newWorker(t, d, "B", shards, epoch.Add(time.Hour))
	a.mustTake("s0")

	b.notAcquired("s0")
	if lt := b.shard("s0").GetLeaseTimeout(); !lt.Before(b.clock.Now()) {
		t.Fatalf("test setup: LeaseTimeout %v should look expired to B (now %v)", lt, b.clock.Now())
	}
	b.clock.Advance(Failover - time.Millisecond)
	b.notAcquired("s0")

	// A renews: the counter B watches changes, so B's wait starts over.
	a.clock.Advance(RenewAfter)
	if err := a.renew("s0"); err != nil {
		t.Fatalf("renew: %v", err)
	}
	b.clock.Advance(2 * time.Millisecond)
	b.notAcquired("s0")
	b.clock.Advance(Failover - time.Millisecond)
	b.notAcquired("s0")
	b.clock.Advance(time.Millisecond)
	b.mustTake("s0")
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "B", Counter: "3"})
}

func testZombieFenced(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"})
	a := newWorker(t, d, "A", shards, epoch)
	b := newWorker(t, d, "B", shards, epoch)
	a.mustTake("s0")
	if err := a.checkpoint("s0", "100"); err != nil {
		t.Fatal(err)
	}
	lease, _ := a.store.Lease("s0")
	// A stalls (its clock does not move); B sees the counter still.
	b.notAcquired("s0")
	b.clock.Advance(Failover)
	b.mustTake("s0")
	if err := b.store.FetchCheckpoint(b.shard("s0")); err != nil || b.shard("s0").GetCheckpoint() != "100" {
		t.Fatalf("B resumes at %q (%v), want 100", b.shard("s0").GetCheckpoint(), err)
	}
	if err := b.checkpoint("s0", "200"); err != nil {
		t.Fatal(err)
	}
	// The zombie wakes up with a batch to checkpoint.
	mustLeaseLost(t, "zombie checkpoint", a.checkpoint("s0", "300"))
	if !closed(lease.Lost()) {
		t.Fatal("zombie's Lost() not closed")
	}
	if _, ok := a.store.Lease("s0"); ok {
		t.Fatal("zombie still lists the lease")
	}
	mustLeaseLost(t, "zombie renewal", a.renew("s0"))
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "B", Counter: "4", Checkpoint: "200"})
	if err := b.checkpoint("s0", "250"); err != nil {
		t.Fatalf("new owner after the zombie: %v", err)
	}
}

func testTakeRace(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"})
	a := newWorker(t, d, "A", shards, epoch)
	b := newWorker(t, d, "B", shards, epoch)
	a.mustTake("s0")
	b.notAcquired("s0")
	b.clock.Advance(Failover)
	// A renews right after B's Scan: B's take pins counter 1 and loses.
	var renewErr error
	a.clock.Advance(RenewAfter)
	b.db.AfterNextScan(func() { renewErr = a.renew("s0") })
	err := b.take("s0")
	if renewErr != nil {
		t.Fatal(renewErr)
	}
	var na *checkpoint.NotAcquiredError
	if !errors.As(err, &na) || na.Owner != "A" || !errors.As(err, &chk.ErrLeaseNotAcquired{}) {
		t.Fatalf("take racing a renewal: %v, want *NotAcquiredError naming owner A", err)
	}
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "A", Counter: "2"})
	// B learnt counter 2 from the failed write: its wait starts over.
	b.clock.Advance(Failover - time.Millisecond)
	b.notAcquired("s0")
	b.clock.Advance(time.Millisecond)
	b.mustTake("s0")
}

func testReleaseHandsOver(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"})
	a := newWorker(t, d, "A", shards, epoch)
	b := newWorker(t, d, "B", shards, epoch)
	a.mustTake("s0")
	if err := a.checkpoint("s0", "7"); err != nil {
		t.Fatal(err)
	}
	b.notAcquired("s0")
	if err := a.release("s0"); err != nil {
		t.Fatal(err)
	}
	b.pass() // next pass, far less than the failover time
	b.mustTake("s0")
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "B", Counter: "4", Checkpoint: "7"})
}

func testNeverBackwards(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	a := newWorker(t, d, "A", NewShards(Shard{ID: "s0"}), epoch)
	a.mustTake("s0")
	big1 := "49590338271490256608559692538361571095921575989136588802"
	big2 := "49590338271490256608559692538361571095921575989136588898"
	steps := []struct {
		seq     string
		wantErr error
		stored  string
	}{
		{"9", nil, "9"},
		{"10", nil, "10"}, // numerically larger though "10" < "9" as strings
		{"9", checkpoint.ErrCheckpointBackwards, "10"},
		{"10", nil, "10"}, // equal is fine (idempotent retry)
		{big2, nil, big2},
		{big1, checkpoint.ErrCheckpointBackwards, big2},
		{"0" + big2, nil, "0" + big2},
		{"12ab", checkpoint.ErrInvalidSequence, "0" + big2},
		{"", checkpoint.ErrInvalidSequence, "0" + big2},
	}
	for _, st := range steps {
		err := a.checkpoint("s0", st.seq)
		if !errors.Is(err, st.wantErr) || (err == nil) != (st.wantErr == nil) {
			t.Fatalf("checkpoint %q: got %v, want %v", st.seq, err, st.wantErr)
		}
		if st.wantErr != nil {
			var ce *checkpoint.CheckpointError
			if !errors.As(err, &ce) || ce.Current != st.stored {
				t.Fatalf("checkpoint %q: error %v, want *CheckpointError with Current %q", st.seq, err, st.stored)
			}
		}
		if got := a.shard("s0").GetCheckpoint(); got != st.stored {
			t.Fatalf("after %q: engine checkpoint %q, want %q (restored on refusal)", st.seq, got, st.stored)
		}
		if got := readRow(t, d, "s0").Checkpoint; got != st.stored {
			t.Fatalf("after %q: row checkpoint %q, want %q", st.seq, got, st.stored)
		}
	}
	if _, ok := a.store.Lease("s0"); !ok {
		t.Fatal("a refused checkpoint must not end the tenure")
	}
}

func testShardEndFinal(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"})
	a := newWorker(t, d, "A", shards, epoch)
	b := newWorker(t, d, "B", shards, epoch)
	a.mustTake("s0")
	if err := a.checkpoint("s0", "5"); err != nil {
		t.Fatal(err)
	}
	if err := a.checkpoint("s0", chk.ShardEnd); err != nil {
		t.Fatal(err)
	}
	if err := a.checkpoint("s0", "6"); !errors.Is(err, checkpoint.ErrShardEnded) {
		t.Fatalf("checkpoint after SHARD_END: %v, want ErrShardEnded", err)
	}
	if err := a.checkpoint("s0", chk.ShardEnd); err != nil {
		t.Fatalf("repeating SHARD_END: %v", err)
	}
	if err := a.release("s0"); err != nil {
		t.Fatal(err)
	}
	wantRow(t, d, "s0", rowView{Exists: true, Counter: "5", Checkpoint: chk.ShardEnd})
	// The engine skips it; and a direct GetLease refuses too.
	if err := b.take("s0"); err != errShardEndSkipped {
		t.Fatalf("take of an ended shard: %v", err)
	}
	if err := b.store.GetLease(&par.ShardStatus{ID: "s0", Mux: &sync.RWMutex{}}, "B"); !errors.As(err, &chk.ErrLeaseNotAcquired{}) {
		t.Fatalf("GetLease of an ended shard: %v", err)
	}
}

func testMergeParents(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "p1"}, Shard{ID: "p2"}, Shard{ID: "c", Parent: "p1", Adjacent: "p2"})
	a := newWorkerWith(t, d, "A", shards, epoch, func(c *checkpoint.Config) { c.MaxLeases = 1 })
	b := newWorker(t, d, "B", shards, epoch)

	a.notAcquired("c") // neither parent started
	a.mustTake("p1")
	if err := a.checkpoint("p1", chk.ShardEnd); err != nil {
		t.Fatal(err)
	}
	if err := a.release("p1"); err != nil {
		t.Fatal(err)
	}
	a.pass()
	a.notAcquired("c") // p2 listed, no row: not finished
	b.mustTake("p2")
	if err := b.checkpoint("p2", "42"); err != nil {
		t.Fatal(err)
	}
	a.pass()
	a.notAcquired("c") // p2 in progress
	if err := b.checkpoint("p2", chk.ShardEnd); err != nil {
		t.Fatal(err)
	}
	a.pass()
	a.mustTake("c")
	wantRow(t, d, "c", rowView{Exists: true, Owner: "A", Counter: "1", Parent: "p1", Adjacent: "p2"})
	// The engine's waitOnParentShard then sees the parent ended.
	ps := &par.ShardStatus{ID: "p1", Mux: &sync.RWMutex{}}
	if err := a.store.FetchCheckpoint(ps); err != nil || ps.GetCheckpoint() != chk.ShardEnd {
		t.Fatalf("parent p1: %q, %v; want SHARD_END", ps.GetCheckpoint(), err)
	}
}

func testParentGone(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	// q1 expired out of the stream with no row; q2 left the stream with
	// an unfinished row (its owner never reached the end).
	shards := NewShards(Shard{ID: "q2"}, Shard{ID: "c1", Parent: "q1"}, Shard{ID: "c2", Parent: "q2"})
	a := newWorker(t, d, "A", shards, epoch)
	a.mustTake("c1")

	a.mustTake("q2")
	if err := a.checkpoint("q2", "77"); err != nil {
		t.Fatal(err)
	}
	if err := a.release("q2"); err != nil {
		t.Fatal(err)
	}
	a.pass()
	a.notAcquired("c2") // q2 still listed and unfinished
	shards.Set(Shard{ID: "c1", Parent: "q1"}, Shard{ID: "c2", Parent: "q2"})
	a.clock.Advance(checkpoint.DefaultShardListTTL) // the cached listing ages out
	a.mustTake("c2")
	// waitOnParentShard must not spin on q2's row that will never end:
	// a gone parent reads as "no checkpoint" (the engine proceeds).
	ps := &par.ShardStatus{ID: "q2", Mux: &sync.RWMutex{}}
	if err := a.store.FetchCheckpoint(ps); err != chk.ErrSequenceIDNotFound {
		t.Fatalf("FetchCheckpoint(gone parent) = %v, want ErrSequenceIDNotFound", err)
	}
}

func testLocalExpiry(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	a := newWorker(t, d, "A", NewShards(Shard{ID: "s0"}), epoch)
	a.mustTake("s0")
	lease, _ := a.store.Lease("s0")
	a.clock.Advance(Failover / 2)
	if err := a.renew("s0"); err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(Failover) // no successful write for a whole failover time
	before := a.db.Calls()["UpdateItem"]
	mustLeaseLost(t, "checkpoint after local expiry", a.checkpoint("s0", "1"))
	if !closed(lease.Lost()) {
		t.Fatal("Lost() not closed on local expiry")
	}
	if n := a.db.Calls()["UpdateItem"] - before; n != 0 {
		t.Fatalf("%d writes after local expiry, want none", n)
	}
}

func testLeftover(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"})
	old := newWorker(t, d, "A", shards, epoch)
	old.mustTake("s0")
	if err := old.checkpoint("s0", "9"); err != nil {
		t.Fatal(err)
	}
	// The process restarts with the same worker id, without releasing.
	a := newWorker(t, d, "A", shards, epoch)
	s := a.shard("s0")
	if err := a.store.FetchCheckpoint(s); err != nil {
		t.Fatal(err)
	}
	if got := s.GetLeaseOwner(); got != "" {
		t.Fatalf("engine AssignedTo = %q: the engine would skip the shard as already owned", got)
	}
	a.mustTake("s0")
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "A", Counter: "3", Checkpoint: "9"})
	mustLeaseLost(t, "the old incarnation", old.checkpoint("s0", "10"))
}

func testOneScanPerPass(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	var list []Shard
	for i := range 6 {
		list = append(list, Shard{ID: fmt.Sprintf("s%d", i)})
	}
	shards := NewShards(list...)
	a := newWorkerWith(t, d, "A", shards, epoch, func(c *checkpoint.Config) { c.MaxLeases = 3 })
	b := newWorker(t, d, "B", shards, epoch)
	a.mustTake("s0") // takes s1 and s2 ahead, up to its limit
	for _, id := range []string{"s1", "s2"} {
		a.mustTake(id) // the engine's next passes adopt them: no AWS call
	}
	if n := a.db.Calls()["UpdateItem"]; n != 3 {
		t.Fatalf("A: %d UpdateItem for 3 leases; want 3", n)
	}
	b.pass()
	b.db.Reset()
	// One engine pass of B: FetchCheckpoint on each shard it does not own,
	// GetLease on the first that is free, which takes every free lease
	// up to B's fair share (3) in one step.
	took := false
	for _, sh := range list {
		err := b.take(sh.ID)
		if err == nil {
			took = true
			break
		}
	}
	if !took {
		t.Fatal("B took nothing")
	}
	if h := b.store.Held(); len(h) != 3 {
		t.Fatalf("B holds %d leases after one pass; want its fair share, 3", len(h))
	}
	calls := b.db.Calls()
	if calls["ScanRound"] != 1 || calls["GetItem"] != 0 || calls["UpdateItem"] != 3 {
		t.Fatalf("one pass: calls %v, want 1 Scan round, 0 GetItem, 3 UpdateItem", calls)
	}
	t.Logf("one pass over %d shards: %v", len(list), calls)
	// A second pass within SnapshotTTL reuses the snapshot.
	b.db.Reset()
	for _, sh := range list[:3] {
		b.take(sh.ID)
	}
	if n := b.db.Calls()["Scan"]; n != 0 {
		t.Fatalf("pass within SnapshotTTL scanned %d times", n)
	}
}

func testRemoveLeaseInfo(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"}, Shard{ID: "s1"}, Shard{ID: "s2"})
	a := newWorker(t, d, "A", shards, epoch)
	b := newWorker(t, d, "B", shards, epoch)
	for _, id := range []string{"s0", "s1", "s2"} {
		a.mustTake(id)
	}
	if err := b.store.RemoveLeaseInfo("s0"); !errors.Is(err, checkpoint.ErrLeaseHeld) {
		t.Fatalf("remove owned row: %v, want ErrLeaseHeld", err)
	}
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "A", Counter: "1"})
	if err := a.release("s1"); err != nil {
		t.Fatal(err)
	}
	if err := a.checkpoint("s2", chk.ShardEnd); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"s1", "s2", "never-existed"} {
		if err := b.store.RemoveLeaseInfo(id); err != nil {
			t.Fatalf("remove %s: %v", id, err)
		}
		wantRow(t, d, id, rowView{})
	}
}

func testOwnerAndStealing(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"}, Shard{ID: "s1"})
	a := newWorker(t, d, "A", shards, epoch)
	a.mustTake("s0")
	if got, err := a.store.GetLeaseOwner("s0"); err != nil || got != "A" {
		t.Fatalf("GetLeaseOwner(s0) = %q, %v", got, err)
	}
	a.mustTake("s1") // taken ahead with s0; the engine adopts it
	if err := a.release("s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.GetLeaseOwner("s1"); !errors.Is(err, chk.NoLeaseOwnerErr) {
		t.Fatalf("GetLeaseOwner(no row) = %v, want NoLeaseOwnerErr", err)
	}
	if _, err := a.store.ListActiveWorkers(nil); !errors.Is(err, checkpoint.ErrLeaseStealingUnsupported) {
		t.Fatalf("ListActiveWorkers: %v", err)
	}
	if err := a.store.ClaimShard(a.shard("s0"), "A"); !errors.Is(err, checkpoint.ErrLeaseStealingUnsupported) {
		t.Fatalf("ClaimShard: %v", err)
	}
}

func testReleaseAll(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"}, Shard{ID: "s1"}, Shard{ID: "s2"})
	a := newWorker(t, d, "A", shards, epoch)
	var lost []<-chan struct{}
	for _, id := range []string{"s0", "s1", "s2"} {
		a.mustTake(id)
		lost = append(lost, a.store.Lost(id))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.store.ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"s0", "s1", "s2"} {
		wantRow(t, d, id, rowView{Exists: true, Counter: "2"})
		if !closed(lost[i]) {
			t.Fatalf("%s: Lost() open after ReleaseAll", id)
		}
	}
	if h := a.store.Held(); len(h) != 0 {
		t.Fatalf("Held() = %+v", h)
	}
}

func testConcurrentInit(t *testing.T, newDeps func(*testing.T) Deps) {
	for i := range 4 {
		d := newDeps(t)
		stores := make([]*checkpoint.Store, 2)
		for j := range stores {
			s, err := checkpoint.New(t.Context(), checkpoint.Config{TableName: d.TableName, WorkerID: fmt.Sprintf("w%d", j), StreamName: "stream"},
				checkpoint.Deps{DynamoDB: d.DynamoDB, Shards: NewShards()})
			if err != nil {
				t.Fatal(err)
			}
			stores[j] = s
		}
		errs := make([]error, len(stores))
		var wg sync.WaitGroup
		for j, s := range stores {
			wg.Go(func() { errs[j] = s.Init() })
		}
		wg.Wait()
		for j, err := range errs {
			if err != nil {
				t.Fatalf("round %d: Init of worker %d: %v", i, j, err)
			}
		}
	}
}

// legacyAPI is what vmware-go-kcl-v2's DynamoCheckpoint needs.
type legacyAPI = chk.DynamoDBAPI

func testMigration(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	api, ok := d.DynamoDB.(legacyAPI)
	if !ok {
		t.Skipf("%T lacks PutItem: cannot run vmware-go-kcl-v2's checkpointer", d.DynamoDB)
	}
	shards := NewShards(Shard{ID: "s0"}, Shard{ID: "s1", Parent: "s0"})
	b := newWorker(t, d, "B", shards, epoch) // creates the table

	cfg := kclcfg.NewKinesisClientLibConfig("app", "stream", "us-east-1", "legacy").
		WithTableName(d.TableName).WithFailoverTimeMillis(int(Failover.Milliseconds())).WithLogger(nopLogger{})
	legacy := chk.NewDynamoCheckpoint(cfg).WithDynamoDB(api)
	if err := legacy.Init(); err != nil {
		t.Fatalf("legacy Init: %v", err)
	}
	ls := &par.ShardStatus{ID: "s0", Mux: &sync.RWMutex{}}
	if err := legacy.GetLease(ls, "legacy"); err != nil {
		t.Fatalf("legacy GetLease: %v", err)
	}
	ls.SetCheckpoint("12345")
	if err := legacy.CheckpointSequence(ls); err != nil {
		t.Fatalf("legacy checkpoint: %v", err)
	}
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "legacy", Checkpoint: "12345"})

	b.notAcquired("s0")
	if got := b.shard("s0").GetCheckpoint(); got != "12345" {
		t.Fatalf("B reads the legacy checkpoint as %q", got)
	}
	// The legacy worker renews (new LeaseTimeout): B's wait starts over.
	b.clock.Advance(Failover / 2)
	if err := legacy.GetLease(ls, "legacy"); err != nil {
		t.Fatalf("legacy renew: %v", err)
	}
	b.clock.Advance(Failover/2 + time.Millisecond)
	b.notAcquired("s0")
	b.clock.Advance(Failover)
	b.mustTake("s0")
	if err := b.store.FetchCheckpoint(b.shard("s0")); err != nil || b.shard("s0").GetCheckpoint() != "12345" {
		t.Fatalf("after takeover: checkpoint %q, %v; want 12345", b.shard("s0").GetCheckpoint(), err)
	}
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "B", Counter: "1", Checkpoint: "12345"})
	if err := b.checkpoint("s0", "12399"); err != nil {
		t.Fatal(err)
	}
	wantRow(t, d, "s0", rowView{Exists: true, Owner: "B", Counter: "2", Checkpoint: "12399"})
}

// nopLogger silences vmware-go-kcl-v2 in tests.
type nopLogger struct{}

func (nopLogger) Debugf(string, ...any)                          {}
func (nopLogger) Infof(string, ...any)                           {}
func (nopLogger) Warnf(string, ...any)                           {}
func (nopLogger) Errorf(string, ...any)                          {}
func (nopLogger) Fatalf(string, ...any)                          {}
func (nopLogger) Panicf(string, ...any)                          {}
func (n nopLogger) WithFields(kcllogger.Fields) kcllogger.Logger { return n }

// A worker below its fair share claims every lease it needs at once (not
// one per pass), never taking an owner below its share; the holder sees
// the claims in its lease snapshot (Run) before any renewal; a lease
// released for a claim is reserved for the claimant, so neither the
// releasing worker nor a third one takes it back, until the reservation
// lapses after the failover time.
func testClaimsSeveral(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"}, Shard{ID: "s1"}, Shard{ID: "s2"}, Shard{ID: "s3"})
	a := newWorker(t, d, "A", shards, epoch)
	for _, id := range []string{"s0", "s1", "s2", "s3"} {
		a.mustTake(id)
	}
	b := newWorker(t, d, "B", shards, epoch)
	for _, id := range []string{"s0", "s1", "s2", "s3"} {
		b.notAcquired(id) // claims s0 and s1 (fair share 2), leaves s2, s3
	}
	claims := map[string]string{}
	for _, id := range []string{"s0", "s1", "s2", "s3"} {
		claims[id] = readClaim(t, d, id)
	}
	if diff := cmp.Diff(map[string]string{"s0": "B", "s1": "B", "s2": "", "s3": ""}, claims); diff != "" {
		t.Fatalf("claims after one pass of B (-want +got):\n%s", diff)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.store.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !a.store.Claimed("s0") || !a.store.Claimed("s1") {
		if time.Now().After(deadline) {
			t.Fatal("A did not see the claims in its lease snapshot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if a.store.Claimed("s2") || a.store.Claimed("s3") {
		t.Fatal("A sees a claim on a lease nobody claimed")
	}
	for _, id := range []string{"s0", "s1"} {
		if err := a.release(id); err != nil {
			t.Fatal(err)
		}
	}
	c := newWorker(t, d, "C", shards, epoch)
	a.pass()
	a.notAcquired("s0") // reserved for B
	c.notAcquired("s1")
	b.pass()
	b.mustTake("s0")
	b.mustTake("s1")
	if got := readClaim(t, d, "s0"); got != "" {
		t.Fatalf("claim %q left on s0 after the claimant took it", got)
	}
	// A reservation whose claimant never comes lapses after the failover
	// time.
	if err := b.release("s1"); err != nil {
		t.Fatal(err)
	}
	setClaim(t, d, "s1", "gone", epoch)
	c.pass()
	c.notAcquired("s1")
	c.clock.Advance(Failover)
	c.mustTake("s1")
}

func readClaim(t *testing.T, d Deps, id string) string {
	t.Helper()
	out, err := d.DynamoDB.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String(d.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"ShardID": &types.AttributeValueMemberS{Value: id}},
	})
	if err != nil {
		t.Fatalf("GetItem %s: %v", id, err)
	}
	if v, ok := out.Item["ClaimRequest"].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func setClaim(t *testing.T, d Deps, id, by string, at time.Time) {
	t.Helper()
	_, err := d.DynamoDB.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
		TableName:        aws.String(d.TableName),
		Key:              map[string]types.AttributeValue{"ShardID": &types.AttributeValueMemberS{Value: id}},
		UpdateExpression: aws.String("SET ClaimRequest = :c, ClaimedAt = :at"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":c": &types.AttributeValueMemberS{Value: by}, ":at": &types.AttributeValueMemberS{Value: at.UTC().Format(time.RFC3339Nano)},
		},
	})
	if err != nil {
		t.Fatalf("set claim on %s: %v", id, err)
	}
}

// runOnce runs the store's snapshot loop for its first tick.
func (w *worker) runOnce(until func() bool) {
	w.t.Helper()
	ctx, cancel := context.WithCancel(w.t.Context())
	done := make(chan error, 1)
	go func() { done <- w.store.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !until() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			w.t.Fatal("Run did not do its work within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		w.t.Fatalf("Run: %v", err)
	}
}

// A take takes every free lease up to the fair share in one step; until
// the engine adopts one (its GetLease on a later pass), Run renews it,
// and releases it if the engine has not adopted it within the failover
// time, so no shard stalls under a lease nobody processes.
func testTakeAhead(t *testing.T, newDeps func(*testing.T) Deps) {
	d := newDeps(t)
	shards := NewShards(Shard{ID: "s0"}, Shard{ID: "s1"}, Shard{ID: "s2"})
	a := newWorker(t, d, "A", shards, epoch)
	a.mustTake("s0")
	for _, id := range []string{"s1", "s2"} {
		wantRow(t, d, id, rowView{Exists: true, Owner: "A", Counter: "1"})
	}
	// The consumer of an earlier tenure of s2, still winding down after a
	// hand-over, must stop: its renewal fails and its release keeps the
	// lease taken ahead.
	old := &par.ShardStatus{ID: "s2", Mux: &sync.RWMutex{}, AssignedTo: "A"}
	mustLeaseLost(t, "renewal by an earlier tenure's consumer", a.store.GetLease(old, "A"))
	if err := a.store.RemoveLeaseOwner("s2"); err != nil {
		t.Fatalf("release by an earlier tenure's consumer: %v", err)
	}
	wantRow(t, d, "s2", rowView{Exists: true, Owner: "A", Counter: "1"})
	a.mustTake("s1") // adopted by the engine's next pass
	a.clock.Advance(Failover/3 + time.Millisecond)
	a.runOnce(func() bool { return readRow(t, d, "s2").Counter == "2" })
	wantRow(t, d, "s1", rowView{Exists: true, Owner: "A", Counter: "1"}) // the engine renews adopted ones
	a.clock.Advance(Failover)
	a.runOnce(func() bool { return readRow(t, d, "s2").Owner == "" })
	if _, held := a.store.Lease("s2"); held {
		t.Fatal("A still holds s2 after releasing it")
	}
	if _, held := a.store.Lease("s1"); !held {
		t.Fatal("A lost the adopted s1")
	}
}
