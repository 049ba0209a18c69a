package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"

	"github.com/shardwatch/shardwatch/pkg/checkpoint"
	"github.com/shardwatch/shardwatch/pkg/checkpoint/checkpointtest"
	"github.com/shardwatch/shardwatch/pkg/checkpoint/internal/ddbfake"
)

const table = "app"

var errNetwork = errors.New("connection reset")

type fixture struct {
	t     *testing.T
	db    *ddbfake.DB
	clock *checkpointtest.Clock
	store *checkpoint.Store
	ss    map[string]*par.ShardStatus
}

func newFixture(t *testing.T, db *ddbfake.DB, id string, shards ...checkpointtest.Shard) *fixture {
	t.Helper()
	return newFixtureConfig(t, db, checkpoint.Config{TableName: table, WorkerID: id, StreamName: "stream"}, shards...)
}

func newFixtureConfig(t *testing.T, db *ddbfake.DB, cfg checkpoint.Config, shards ...checkpointtest.Shard) *fixture {
	t.Helper()
	if len(shards) == 0 {
		shards = []checkpointtest.Shard{{ID: "s0"}}
	}
	clock := checkpointtest.NewClock(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC))
	s, err := checkpoint.New(t.Context(), cfg,
		checkpoint.Deps{DynamoDB: db, Shards: checkpointtest.NewShards(shards...), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db, clock: clock, store: s, ss: map[string]*par.ShardStatus{}}
}

func (f *fixture) shard(id string) *par.ShardStatus {
	if s, ok := f.ss[id]; ok {
		return s
	}
	s := &par.ShardStatus{ID: id, Mux: &sync.RWMutex{}}
	f.ss[id] = s
	return s
}

func (f *fixture) take(id string) {
	f.t.Helper()
	if err := f.store.GetLease(f.shard(id), f.store.Config().WorkerID); err != nil {
		f.t.Fatalf("take %s: %v", id, err)
	}
}

func (f *fixture) renew(id string) error {
	return f.store.GetLease(f.shard(id), f.store.Config().WorkerID)
}

func (f *fixture) checkpoint(id, seq string) error {
	f.shard(id).SetCheckpoint(seq)
	return f.store.CheckpointSequence(f.shard(id))
}

func (f *fixture) counter(id string) string {
	it := f.db.Item(table, id)
	if n, ok := it["LeaseCounter"].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return ""
}

func TestConfigValidate(t *testing.T) {
	base := func() checkpoint.Config {
		c := checkpoint.Config{TableName: "app", WorkerID: "w", StreamName: "s"}
		c.SetDefaults()
		return c
	}
	tests := []struct {
		name   string
		mutate func(*checkpoint.Config)
		want   string // substring of the error; "" = valid
	}{
		{"defaults", func(*checkpoint.Config) {}, ""},
		{"no table", func(c *checkpoint.Config) { c.TableName = "" }, "TableName"},
		{"no worker", func(c *checkpoint.Config) { c.WorkerID = "" }, "WorkerID"},
		{"no stream", func(c *checkpoint.Config) { c.StreamName = "" }, "StreamName"},
		{"negative failover", func(c *checkpoint.Config) { c.FailoverTime = -1 }, "FailoverTime"},
		{"renew too slow", func(c *checkpoint.Config) { c.RenewInterval = 6 * time.Second }, "RenewInterval"},
		{"renewals skipped too long", func(c *checkpoint.Config) { c.RenewAfter = 6 * time.Second }, "RenewAfter"},
		{"call timeout too long", func(c *checkpoint.Config) { c.CallTimeout = 6 * time.Second }, "CallTimeout"},
		{"no snapshot ttl", func(c *checkpoint.Config) { c.SnapshotTTL = -1 }, "SnapshotTTL"},
		{"no list ttl", func(c *checkpoint.Config) { c.ShardListTTL = -1 }, "ShardListTTL"},
		{"no ready timeout", func(c *checkpoint.Config) { c.TableReadyTimeout = -1 }, "TableReadyTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want error naming %q", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := checkpoint.Config{FailoverTime: 6 * time.Second}
	c.SetDefaults()
	want := checkpoint.Config{
		FailoverTime: 6 * time.Second, RenewInterval: 2 * time.Second, RenewAfter: 3 * time.Second, SnapshotTTL: time.Second,
		ShardListTTL: 30 * time.Second, CallTimeout: 3 * time.Second, TableReadyTimeout: time.Minute,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("SetDefaults (-want +got):\n%s", diff)
	}
}

// A renewal whose response is lost after the write landed: tolerated, and
// the next renewal adopts the row instead of declaring the lease lost.
func TestRenewAmbiguousWriteIsAdopted(t *testing.T) {
	f := newFixture(t, ddbfake.New(), "A")
	f.take("s0")
	lease, _ := f.store.Lease("s0")
	f.clock.Advance(checkpointtest.RenewAfter)
	f.db.Inject(ddbfake.Fault{Op: "UpdateItem", Err: errNetwork, Applied: true})
	if err := f.renew("s0"); err != nil {
		t.Fatalf("renew with a lost response: %v, want tolerated", err)
	}
	if got := f.counter("s0"); got != "2" {
		t.Fatalf("counter %s, want 2 (the write landed)", got)
	}
	if err := f.renew("s0"); err != nil {
		t.Fatalf("renew after an ambiguous write: %v", err)
	}
	if got := f.counter("s0"); got != "3" {
		t.Fatalf("counter %s, want 3", got)
	}
	if h := f.store.Held(); len(h) != 1 || h[0].Counter != 3 {
		t.Fatalf("Held() = %+v, want counter 3", h)
	}
	select {
	case <-lease.Lost():
		t.Fatal("lease reported lost")
	default:
	}
}

// An ambiguous checkpoint that landed: the retry is validated against the
// adopted row, so a repeat of the same sequence succeeds and an older one
// is refused.
func TestCheckpointAmbiguousWriteIsAdopted(t *testing.T) {
	f := newFixture(t, ddbfake.New(), "A")
	f.take("s0")
	f.db.Inject(ddbfake.Fault{Op: "UpdateItem", Err: errNetwork, Applied: true})
	err := f.checkpoint("s0", "500")
	if err == nil || checkpoint.IsLeaseLost(err) {
		t.Fatalf("checkpoint with a lost response: %v, want a transient error", err)
	}
	if got := f.shard("s0").GetCheckpoint(); got != "" {
		t.Fatalf("engine checkpoint %q after a failed write, want the stored one", got)
	}
	if err := f.checkpoint("s0", "400"); !errors.Is(err, checkpoint.ErrCheckpointBackwards) {
		t.Fatalf("checkpoint below the landed one: %v, want ErrCheckpointBackwards", err)
	}
	if err := f.checkpoint("s0", "500"); err != nil {
		t.Fatalf("retrying the landed checkpoint: %v", err)
	}
	if got := f.counter("s0"); got != "3" {
		t.Fatalf("counter %s, want 3", got)
	}
}

func TestRenewTransientFailures(t *testing.T) {
	f := newFixture(t, ddbfake.New(), "A")
	f.take("s0")
	lease, _ := f.store.Lease("s0")
	renew := f.store.Config().RenewInterval // 3.33s of a 10s failover
	// Two failed renewals still leave time for a third before failover.
	for i := range 2 {
		f.clock.Advance(renew)
		f.db.Inject(ddbfake.Fault{Op: "UpdateItem", Err: errNetwork})
		if err := f.renew("s0"); err != nil {
			t.Fatalf("failed renewal %d: %v, want tolerated", i+1, err)
		}
	}
	// The third would leave no chance before failover: lost.
	f.clock.Advance(renew)
	f.db.Inject(ddbfake.Fault{Op: "UpdateItem", Err: errNetwork})
	err := f.renew("s0")
	if !checkpoint.IsLeaseLost(err) || !errors.Is(err, errNetwork) {
		t.Fatalf("third failed renewal: %v, want ErrLeaseLost wrapping the cause", err)
	}
	select {
	case <-lease.Lost():
	default:
		t.Fatal("Lost() open")
	}
}

func TestRenewRecoversAfterTransientFailure(t *testing.T) {
	f := newFixture(t, ddbfake.New(), "A")
	f.take("s0")
	f.clock.Advance(checkpointtest.RenewAfter)
	f.db.Inject(ddbfake.Fault{Op: "UpdateItem", Err: errNetwork})
	if err := f.renew("s0"); err != nil {
		t.Fatal(err)
	}
	// The unanswered write did not land: the retry's condition holds.
	if err := f.renew("s0"); err != nil {
		t.Fatal(err)
	}
	if got := f.counter("s0"); got != "2" {
		t.Fatalf("counter %s, want 2", got)
	}
}

func TestFetchCheckpointScanError(t *testing.T) {
	f := newFixture(t, ddbfake.New(), "A")
	f.db.Inject(ddbfake.Fault{Op: "Scan", Err: errNetwork})
	err := f.store.FetchCheckpoint(f.shard("s0"))
	if err == nil || err == chk.ErrSequenceIDNotFound || !errors.Is(err, errNetwork) {
		t.Fatalf("FetchCheckpoint on a failing Scan: %v, want the wrapped cause", err)
	}
	// Not a routine "not acquired" either: the engine logs it.
	if err := f.store.GetLease(f.shard("s0"), "A"); err != nil {
		t.Fatalf("GetLease after the Scan recovered: %v", err)
	}
}

func TestGetLeaseWrongWorker(t *testing.T) {
	f := newFixture(t, ddbfake.New(), "A")
	if err := f.store.GetLease(f.shard("s0"), "B"); !errors.Is(err, checkpoint.ErrWrongWorker) {
		t.Fatalf("GetLease for another worker id: %v", err)
	}
}

func TestUnknownChildShard(t *testing.T) {
	f := newFixture(t, ddbfake.New(), "A", checkpointtest.Shard{ID: "p"})
	s := f.shard("c")
	s.ParentShardId = "p"
	err := f.store.GetLease(s, "A")
	if !errors.Is(err, checkpoint.ErrUnknownShard) || errors.As(err, &chk.ErrLeaseNotAcquired{}) {
		t.Fatalf("GetLease of a shard the stream does not list: %v", err)
	}
}

func TestInitCreateRaceAndSchema(t *testing.T) {
	db := ddbfake.New()
	// Describe misses the table, then Create finds it created meanwhile.
	if _, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("ShardID"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	db.Inject(ddbfake.Fault{Op: "DescribeTable", Err: &types.ResourceNotFoundException{Message: aws.String("gone")}})
	newFixture(t, db, "A") // Init must succeed

	other := ddbfake.New()
	if _, err := other.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	s, err := checkpoint.New(t.Context(), checkpoint.Config{TableName: table, WorkerID: "A", StreamName: "s"},
		checkpoint.Deps{DynamoDB: other, Shards: checkpointtest.NewShards()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Init(); err == nil || !strings.Contains(err.Error(), "key schema") {
		t.Fatalf("Init on a table keyed by pk: %v, want a key schema error", err)
	}
}

func TestInitDescribeError(t *testing.T) {
	db := ddbfake.New()
	db.Inject(ddbfake.Fault{Op: "DescribeTable", Err: errNetwork})
	s, err := checkpoint.New(t.Context(), checkpoint.Config{TableName: table, WorkerID: "A", StreamName: "s"},
		checkpoint.Deps{DynamoDB: db, Shards: checkpointtest.NewShards()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Init(); !errors.Is(err, errNetwork) {
		t.Fatalf("Init: %v, want the describe error", err)
	}
	if n := db.Calls()["CreateTable"]; n != 0 {
		t.Fatalf("created the table %d times on an unknown describe error", n)
	}
}

// The engine renews from one goroutine while the record processor
// checkpoints from another: per-shard serialisation keeps the expected
// counter exact, so neither is fenced out by the other.
func TestConcurrentRenewAndCheckpoint(t *testing.T) {
	// RenewAfter 1 ns and a clock that moves: renewals write unless a
	// checkpoint just did.
	f := newFixtureConfig(t, ddbfake.New(), checkpoint.Config{TableName: table, WorkerID: "A", StreamName: "stream", RenewAfter: time.Nanosecond},
		checkpointtest.Shard{ID: "s0"}, checkpointtest.Shard{ID: "s1"})
	f.take("s0")
	f.take("s1")
	updatesBefore := f.db.Calls()["UpdateItem"]
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for _, id := range []string{"s0", "s1"} {
		renewer := &par.ShardStatus{ID: id, AssignedTo: "A", Mux: &sync.RWMutex{}}
		proc := f.shard(id)
		wg.Go(func() {
			for range n {
				f.clock.Advance(time.Microsecond)
				errs <- f.store.GetLease(renewer, "A")
			}
		})
		wg.Go(func() {
			for i := range n {
				proc.SetCheckpoint(fmt.Sprint(1000 + i))
				errs <- f.store.CheckpointSequence(proc)
			}
		})
	}
	wg.Go(func() {
		for range n {
			f.store.Held()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every write landed once: the counters moved by the UpdateItem calls.
	moved := 0
	for _, id := range []string{"s0", "s1"} {
		c, _ := strconv.Atoi(f.counter(id))
		if c < 1+n || c > 1+2*n {
			t.Fatalf("%s: counter %d, want %d checkpoints and up to %d renewals on top of 1", id, c, n, n)
		}
		moved += c - 1
	}
	if calls := f.db.Calls()["UpdateItem"] - updatesBefore; calls != moved {
		t.Fatalf("%d UpdateItem calls moved the counters by %d", calls, moved)
	}
}

func TestReleaseAllHonoursContext(t *testing.T) {
	f := newFixture(t, ddbfake.New(), "A")
	f.take("s0")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.store.ReleaseAll(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReleaseAll with a cancelled context: %v", err)
	}
	// The tenure ends either way; the row expires for others.
	if h := f.store.Held(); len(h) != 0 {
		t.Fatalf("Held() = %+v", h)
	}
}
