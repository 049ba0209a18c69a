package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
	"go.uber.org/zap"
)

// Deps are the Store's collaborators.
type Deps struct {
	DynamoDB DynamoDBAPI
	Shards   ShardLister
	// Clock defaults to the system clock.
	Clock Clock
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
}

// Store is a fenced lease and checkpoint store on a vmware-go-kcl-v2
// compatible DynamoDB table. It implements chk.Checkpointer and is safe
// for concurrent use. It starts no goroutines.
type Store struct {
	cfg    Config
	db     DynamoDBAPI
	lister ShardLister
	clock  Clock
	log    *zap.Logger
	base   context.Context

	refreshMu  sync.Mutex  // one Scan at a time
	refreshing atomic.Bool // Run is refreshing the snapshot
	listMu     sync.Mutex  // one ListShards walk at a time
	takeMu     sync.Mutex  // one take at a time

	mu         sync.Mutex
	held       map[string]*tenure
	nextTenure uint64
	snap       map[string]cachedRow
	snapAt     time.Time // when the last Scan completed
	snapOK     bool
	obs        map[string]observation
	shardList  map[string]shardMeta
	listAt     time.Time
	listOK     bool
	// goneParents are parents the gate passed because they left the stream;
	// FetchCheckpoint reports them as absent so the engine's
	// waitOnParentShard does not spin on a row that will never end.
	goneParents map[string]struct{}
}

type cachedRow struct {
	row
	at time.Time // when we learnt it
}

// observation is when this process first saw a lease version.
type observation struct {
	version string
	since   time.Time
}

type shardMeta struct{ parent, adjacent string }

var _ chk.Checkpointer = (*Store)(nil)

// New builds a Store. ctx is the base context of every call the engine
// makes through the chk.Checkpointer interface (which has none); cancel it
// only after the engine has shut down and released its leases, since the
// final checkpoints and releases run on it. cfg's zero durations take
// their defaults.
func New(ctx context.Context, cfg Config, d Deps) (*Store, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.DynamoDB == nil || d.Shards == nil {
		return nil, errors.New("checkpoint: DynamoDB client and shard lister are required")
	}
	if ctx == nil {
		return nil, errors.New("checkpoint: nil base context")
	}
	if d.Clock == nil {
		d.Clock = systemClock{}
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	return &Store{
		cfg: cfg, db: d.DynamoDB, lister: d.Shards, clock: d.Clock, base: ctx,
		log:         d.Logger.With(zap.String("worker_id", cfg.WorkerID), zap.String("table", cfg.TableName)),
		held:        map[string]*tenure{},
		snap:        map[string]cachedRow{},
		obs:         map[string]observation{},
		goneParents: map[string]struct{}{},
	}, nil
}

// Config returns the effective configuration (defaults applied).
func (s *Store) Config() Config { return s.cfg }

func (s *Store) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.CallTimeout)
}

func (s *Store) key(shardID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrShardID: &types.AttributeValueMemberS{Value: shardID}}
}

// Init makes sure the lease table exists and is ACTIVE. Concurrent
// creators are fine: ResourceInUseException means another worker created
// it first.
func (s *Store) Init() error { return s.InitContext(s.base) }

// InitContext is Init with an explicit context.
func (s *Store) InitContext(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.TableReadyTimeout)
	defer cancel()
	desc, err := s.describe(ctx)
	switch {
	case err == nil:
	case isResourceNotFound(err):
		if err := s.createTable(ctx); err != nil {
			return err
		}
		// DynamoDB Local is ACTIVE at once; DynamoDB takes seconds.
		if desc, err = s.describe(ctx); err != nil && !isResourceNotFound(err) {
			return err
		}
	default:
		return err
	}
	wait := 50 * time.Millisecond
	for {
		if desc != nil && desc.TableStatus == types.TableStatusActive {
			return checkKeySchema(s.cfg.TableName, desc)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("table %s: wait for ACTIVE: %w", s.cfg.TableName, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
		desc, err = s.describe(ctx)
		// DescribeTable may not see a table created a moment ago.
		if err != nil && !isResourceNotFound(err) {
			return err
		}
	}
}

func (s *Store) describe(ctx context.Context) (*types.TableDescription, error) {
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	out, err := s.db.DescribeTable(cctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.cfg.TableName)})
	if err != nil {
		return nil, fmt.Errorf("table %s: describe: %w", s.cfg.TableName, err)
	}
	return out.Table, nil
}

func (s *Store) createTable(ctx context.Context) error {
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	_, err := s.db.CreateTable(cctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(s.cfg.TableName),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrShardID), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrShardID), KeyType: types.KeyTypeHash}},
	})
	if err != nil && !isResourceInUse(err) {
		return fmt.Errorf("table %s: create: %w", s.cfg.TableName, err)
	}
	if err == nil {
		s.log.Info("created lease table")
	}
	return nil
}

func checkKeySchema(table string, d *types.TableDescription) error {
	if len(d.KeySchema) != 1 || aws.ToString(d.KeySchema[0].AttributeName) != attrShardID || d.KeySchema[0].KeyType != types.KeyTypeHash {
		return fmt.Errorf("table %s: key schema is not a single hash key %s", table, attrShardID)
	}
	for _, a := range d.AttributeDefinitions {
		if aws.ToString(a.AttributeName) == attrShardID && a.AttributeType != types.ScalarAttributeTypeS {
			return fmt.Errorf("table %s: key %s is %s, want S", table, attrShardID, a.AttributeType)
		}
	}
	return nil
}

// ---- snapshot of the table (shards this worker does not hold) ----

// ensureSnapshot rescans the table when the snapshot is older than
// SnapshotTTL. While Run refreshes the snapshot on its own cadence, the
// engine's passes read it as it is and scan only if Run has fallen behind
// by more than two periods (a slow or failing Scan), so passes may run
// several times a second without adding reads.
func (s *Store) ensureSnapshot(ctx context.Context) error {
	if s.snapshotFresh() {
		return nil
	}
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if s.snapshotFresh() { // another caller refreshed while we waited
		return nil
	}
	return s.scan(ctx)
}

func (s *Store) snapshotFresh() bool {
	ttl := s.cfg.SnapshotTTL
	if s.refreshing.Load() {
		ttl *= 3
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapOK && s.clock.Now().Sub(s.snapAt) < ttl
}

// Run refreshes the lease snapshot every SnapshotTTL until ctx ends, so
// the engine's passes never wait for a Scan, a holder sees a claim on its
// lease within one period, and every worker notices a released or expired
// lease within one period whatever its pass rate. It is optional (without
// it the passes scan when the snapshot is older than SnapshotTTL) and
// returns nil when ctx ends; a failed Scan is logged and retried at the
// next tick. Cancel ctx only after the engine has shut down.
func (s *Store) Run(ctx context.Context) error {
	if !s.refreshing.CompareAndSwap(false, true) {
		return errors.New("checkpoint: Run called twice")
	}
	defer s.refreshing.Store(false)
	t := time.NewTicker(s.cfg.SnapshotTTL)
	defer t.Stop()
	failing := false
	for {
		s.refreshMu.Lock()
		err := s.scan(ctx)
		s.refreshMu.Unlock()
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			s.log.Warn("lease snapshot refresh failed; retrying every period", zap.Error(err))
			failing = true
		case err == nil && failing:
			s.log.Info("lease snapshot refresh recovered")
			failing = false
		}
		s.tendPending(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// tendPending renews the leases takeMore took ahead that the engine has
// not adopted yet, and releases one the engine has not adopted within a
// failover time (it does not list that shard, or is at its lease limit):
// a lease nobody processes must not stall its shard.
func (s *Store) tendPending(ctx context.Context) {
	now := s.clock.Now()
	var renew, drop []*tenure
	s.mu.Lock()
	for _, t := range s.held {
		switch {
		case t.adopted || t.closed:
		case now.Sub(t.acquiredAt) >= s.cfg.FailoverTime:
			drop = append(drop, t)
		case now.Sub(t.lastRenewal) >= s.cfg.RenewInterval:
			renew = append(renew, t)
		}
	}
	s.mu.Unlock()
	for _, t := range renew {
		t.op.Lock()
		e := newExpr()
		_, err := s.writeHeld(ctx, t, e, &update{e: e}, "renew", true)
		t.op.Unlock()
		if err != nil && !IsLeaseLost(err) {
			s.log.Warn("renew a lease taken ahead", zap.String("shard_id", t.shardID), zap.Error(err))
		}
	}
	for _, t := range drop {
		s.log.Warn("releasing a lease the engine did not start", zap.String("shard_id", t.shardID))
		if err := s.release(ctx, t.shardID); err != nil && !IsLeaseLost(err) {
			s.log.Warn("release a lease the engine did not start", zap.String("shard_id", t.shardID), zap.Error(err))
		}
	}
}

func (s *Store) scan(ctx context.Context) error {
	started := s.clock.Now()
	rows := map[string]row{}
	var start map[string]types.AttributeValue
	for {
		cctx, cancel := s.callCtx(ctx)
		out, err := s.db.Scan(cctx, &dynamodb.ScanInput{
			TableName:         aws.String(s.cfg.TableName),
			ConsistentRead:    aws.Bool(true),
			ExclusiveStartKey: start,
		})
		cancel()
		if err != nil {
			return fmt.Errorf("table %s: scan: %w", s.cfg.TableName, err)
		}
		for _, it := range out.Items {
			r, err := parseRow(it)
			if err != nil {
				// One bad row must not blind the worker to all others.
				s.log.Warn("skipping unreadable lease row", zap.Error(err))
				continue
			}
			rows[r.ShardID] = r
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	// Stamp observations with the time the Scan completed, not started: a
	// renewal may have landed mid-scan, and the later stamp can only make
	// us wait longer before calling a lease expired, never shorter.
	done := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]cachedRow, len(rows))
	for id, r := range rows {
		if c, ok := s.snap[id]; ok && c.at.After(started) {
			next[id] = c // our own write landed after the scan began
			continue
		}
		next[id] = cachedRow{row: r, at: done}
	}
	for id, c := range s.snap {
		if _, ok := next[id]; !ok && c.at.After(started) {
			next[id] = c
		}
	}
	s.snap, s.snapAt, s.snapOK = next, done, true
	for id := range s.obs {
		if _, ok := next[id]; !ok {
			delete(s.obs, id)
		}
	}
	for id, c := range next {
		s.observeLocked(id, c.row, done)
	}
	return nil
}

// observeLocked records when this process first saw the row's version.
func (s *Store) observeLocked(id string, r row, at time.Time) {
	if r.Owner == "" || r.Owner == s.cfg.WorkerID {
		delete(s.obs, id)
		return
	}
	v := r.version()
	if o, ok := s.obs[id]; ok && o.version == v {
		return
	}
	s.obs[id] = observation{version: v, since: at}
}

// noteRow installs a row we just read or wrote.
func (s *Store) noteRow(r row) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap[r.ShardID] = cachedRow{row: r, at: now}
	s.observeLocked(r.ShardID, r, now)
}

func (s *Store) cached(id string) (row, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.snap[id]
	return c.row, ok
}

// ---- shard list (parents of merges) ----

func (s *Store) shardInfo(ctx context.Context, id string) (shardMeta, map[string]shardMeta, error) {
	now := s.clock.Now()
	s.mu.Lock()
	m, known := s.shardList[id]
	list := s.shardList
	stale := !s.listOK || now.Sub(s.listAt) >= s.cfg.ShardListTTL
	// An unknown id usually means a fresh split or merge: relist, but not
	// more often than the snapshot so a bogus id cannot hammer Kinesis.
	recheck := !known && now.Sub(s.listAt) >= s.cfg.SnapshotTTL
	s.mu.Unlock()
	if known && !stale {
		return m, list, nil
	}
	if stale || recheck {
		var err error
		if list, err = s.listShards(ctx); err != nil {
			return shardMeta{}, nil, err
		}
		m, known = list[id]
	}
	if !known {
		return shardMeta{}, nil, fmt.Errorf("shard %s: stream %s: %w", id, s.cfg.StreamName, ErrUnknownShard)
	}
	return m, list, nil
}

func (s *Store) listShards(ctx context.Context) (map[string]shardMeta, error) {
	s.listMu.Lock()
	defer s.listMu.Unlock()
	list := map[string]shardMeta{}
	in := &kinesis.ListShardsInput{StreamName: aws.String(s.cfg.StreamName)}
	for {
		cctx, cancel := s.callCtx(ctx)
		out, err := s.lister.ListShards(cctx, in)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("stream %s: list shards: %w", s.cfg.StreamName, err)
		}
		for _, sh := range out.Shards {
			list[aws.ToString(sh.ShardId)] = shardMeta{parent: aws.ToString(sh.ParentShardId), adjacent: aws.ToString(sh.AdjacentParentShardId)}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		// With a NextToken the stream name must be left out.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	s.mu.Lock()
	s.shardList, s.listAt, s.listOK = list, s.clock.Now(), true
	s.mu.Unlock()
	return list, nil
}

// parentsDone reports whether every parent of shard id (both for a merge)
// reached SHARD_END in the table or has left the stream. It returns the
// adjacent parent so the take can record it.
func (s *Store) parentsDone(ctx context.Context, id, parent string) (adjacent string, pending string, err error) {
	meta, list, err := s.shardInfo(ctx, id)
	if err != nil {
		return "", "", err
	}
	if parent == "" {
		parent = meta.parent
	}
	for _, p := range []string{parent, meta.adjacent} {
		if p == "" {
			continue
		}
		if r, ok := s.cached(p); ok && r.Checkpoint == ShardEnd {
			continue
		}
		if _, inStream := list[p]; inStream {
			// Still in the stream and not ended (or no row yet: nobody has
			// even started it).
			return meta.adjacent, p, nil
		}
		s.mu.Lock()
		s.goneParents[p] = struct{}{}
		s.mu.Unlock()
	}
	return meta.adjacent, "", nil
}

// ---- chk.Checkpointer ----

// FetchCheckpoint fills shard's Checkpoint (and, for shards this worker
// does not hold, AssignedTo and LeaseTimeout) and returns
// chk.ErrSequenceIDNotFound, unwrapped as the engine compares it with ==,
// when there is no checkpoint. A held shard answers from memory (fresh by
// construction: every write of the tenure returns the new row); others
// from the Scan snapshot.
func (s *Store) FetchCheckpoint(shard *par.ShardStatus) error {
	if t := s.tenureOf(shard.ID); t != nil {
		s.mu.Lock()
		cp := t.checkpoint
		s.mu.Unlock()
		shard.SetCheckpoint(cp)
		if cp == "" {
			return chk.ErrSequenceIDNotFound
		}
		return nil
	}
	if err := s.ensureSnapshot(s.base); err != nil {
		return err
	}
	s.mu.Lock()
	c, ok := s.snap[shard.ID]
	_, gone := s.goneParents[shard.ID]
	s.mu.Unlock()
	if !ok {
		shard.SetCheckpoint("")
		return chk.ErrSequenceIDNotFound
	}
	owner := c.Owner
	if owner == s.cfg.WorkerID {
		// Not held by this process: a leftover of an earlier incarnation
		// (or released a moment ago). Report it unowned so the engine
		// tries GetLease instead of skipping it as "already mine".
		owner = ""
	}
	cp := c.Checkpoint
	if gone && cp != ShardEnd {
		cp = ""
	}
	shard.Mux.Lock()
	shard.Checkpoint = cp
	shard.AssignedTo = owner
	if lt, err := time.Parse(time.RFC3339Nano, c.LeaseTimeout); err == nil {
		shard.LeaseTimeout = lt
	}
	shard.Mux.Unlock()
	if cp == "" {
		return chk.ErrSequenceIDNotFound
	}
	return nil
}

// GetLease takes the shard's lease, or renews it when the engine already
// records this worker as the owner (its renewal goroutine). A take that
// does not succeed returns a *NotAcquiredError (the engine moves on
// quietly); a renewal of a lost lease returns ErrLeaseLost.
func (s *Store) GetLease(shard *par.ShardStatus, workerID string) error {
	if workerID != s.cfg.WorkerID {
		return fmt.Errorf("shard %s: get lease for %q: %w", shard.ID, workerID, ErrWrongWorker)
	}
	if shard.GetLeaseOwner() == workerID {
		return s.renew(shard)
	}
	return s.take(s.base, shard)
}

// take serves the engine's take of one shard. The engine starts at most
// one shard consumer per pass, but a lease should not wait for passes: a
// successful take also takes every other lease this worker may take now
// (takeMore), and the engine adopts those on its next passes without any
// AWS call. Until adopted, Run renews them.
func (s *Store) take(ctx context.Context, shard *par.ShardStatus) error {
	s.takeMu.Lock()
	defer s.takeMu.Unlock()
	id, me := shard.ID, s.cfg.WorkerID
	if t := s.tenureOf(id); t != nil {
		s.mu.Lock()
		adopted, cp := t.adopted, t.checkpoint
		t.adopted = true
		s.mu.Unlock()
		if adopted {
			// The engine cleared AssignedTo before calling
			// RemoveLeaseOwner: the old consumer is still releasing.
			// Retry next pass.
			return &NotAcquiredError{ShardID: id, Owner: me, Reason: "previous tenure still releasing"}
		}
		shard.Mux.Lock()
		shard.AssignedTo = me
		shard.Checkpoint = cp
		shard.Mux.Unlock()
		return nil
	}
	if err := s.ensureSnapshot(ctx); err != nil {
		return err
	}
	if err := s.takeRow(ctx, id, shard.ParentShardId, true); err != nil {
		return err
	}
	t := s.tenureOf(id)
	s.mu.Lock()
	t.adopted = true
	cp := t.checkpoint
	s.mu.Unlock()
	shard.Mux.Lock()
	shard.AssignedTo = me
	shard.Checkpoint = cp
	shard.Mux.Unlock()
	s.takeMore(ctx, id)
	return nil
}

// takeMore takes every other lease this worker may take now (free,
// released, expired, up to its fair share), in one step. Claims are left
// to the engine's passes.
func (s *Store) takeMore(ctx context.Context, skip string) {
	// Only shards in the stream: the engine starts no consumer for others.
	// Leases handed over to us come first, so free ones do not fill the
	// fair share before them.
	me, now := s.cfg.WorkerID, s.clock.Now()
	s.mu.Lock()
	ids := make([]string, 0, len(s.shardList))
	for id := range s.shardList {
		ids = append(ids, id)
	}
	handed := func(id string) bool {
		c, ok := s.snap[id]
		return ok && c.Owner == "" && c.Claim == me && s.reservedFor(c.row, now)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if ha, hb := handed(a), handed(b); ha != hb {
			if ha {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	s.mu.Unlock()
	for _, id := range ids {
		if id == skip || s.tenureOf(id) != nil {
			continue
		}
		err := s.takeRow(ctx, id, "", false)
		var na *NotAcquiredError
		switch {
		case err == nil:
		case errors.As(err, &na) && strings.HasPrefix(na.Reason, "balanced"):
			return // fair share reached
		case errors.As(err, &na), errors.Is(err, ErrUnknownShard):
		default:
			s.log.Debug("take more leases", zap.String("shard_id", id), zap.Error(err))
			return
		}
	}
}

// takeRow takes the lease of shard id when this worker may: it is free
// (or released for our claim), expired, or has no row yet, its parents
// are done, and this worker is below its fair share. With mayClaim, an
// unexpired lease of a worker above its share is claimed instead.
func (s *Store) takeRow(ctx context.Context, id, parent string, mayClaim bool) error {
	me := s.cfg.WorkerID
	r, exists := s.cached(id)
	if exists && r.Checkpoint == ShardEnd {
		return &NotAcquiredError{ShardID: id, Owner: r.Owner, Reason: "shard ended"}
	}
	if parent == "" {
		parent = r.Parent
	}
	if parent == "" {
		s.mu.Lock()
		parent = s.shardList[id].parent
		s.mu.Unlock()
	}
	var adjacent string
	if parent != "" {
		adj, pending, err := s.parentsDone(ctx, id, parent)
		if err != nil {
			return fmt.Errorf("shard %s: parent check: %w", id, err)
		}
		if pending != "" {
			return &NotAcquiredError{ShardID: id, Owner: r.Owner, Reason: "parent " + pending + " not finished"}
		}
		adjacent = adj
	}
	now := s.clock.Now()
	// The shard list makes the fair share right before every shard has a
	// row; without it (a listing error) rows alone are a fine estimate.
	_, list, _ := s.shardInfo(ctx, id)
	bal := s.balance(id, exists, list, now)
	if exists && r.Owner != "" && r.Owner != me {
		s.mu.Lock()
		o, ok := s.obs[id]
		s.mu.Unlock()
		if !ok || o.version != r.version() || now.Sub(o.since) < s.cfg.FailoverTime {
			// Below the fair share with nothing free: claim from a worker
			// above it, several leases at once if need be (one claim per
			// lease, never taking an owner below the share).
			if mayClaim && bal.free == 0 && bal.held+bal.claimsOut < bal.target &&
				bal.others[r.Owner]-bal.claimsOn[r.Owner] > bal.target && !s.freshClaim(r, now) {
				return s.claim(ctx, r, now)
			}
			return &NotAcquiredError{ShardID: id, Owner: r.Owner, Reason: "lease not expired"}
		}
	}
	if exists && r.Owner == "" && s.reservedForOther(r, now) {
		return &NotAcquiredError{ShardID: id, Reason: "handed over to claimant " + r.Claim}
	}
	// A lease handed over to us is taken even at the fair share (the
	// share may have changed since the claim): leaving it would idle the
	// shard until the reservation lapses. Balance corrects any excess.
	mine := exists && r.Owner == "" && r.Claim == me && s.reservedFor(r, now)
	if bal.held >= bal.target && !mine {
		return &NotAcquiredError{ShardID: id, Owner: r.Owner, Reason: fmt.Sprintf("balanced: holding %d of a fair share of %d", bal.held, bal.target)}
	}

	e := newExpr()
	var cond string
	next, switches := int64(1), int64(1)
	if exists {
		if r.HasCounter {
			next = r.Counter + 1
		}
		if r.Owner == me {
			switches = r.OwnerSwitches
		} else {
			switches = r.OwnerSwitches + 1
		}
		owner := e.strIs(attrOwner, r.Owner)
		cond = owner + " AND " + e.versionIs(r)
	} else {
		cond = "attribute_not_exists(" + e.n(attrShardID) + ")"
	}
	u := &update{e: e}
	u.set(attrOwner, e.s(me))
	u.del(attrClaim)
	u.del(attrClaimedAt)
	u.set(attrCounter, e.num(next))
	u.set(attrLeaseTimeout, e.s(wallString(now.Add(s.cfg.FailoverTime))))
	u.set(attrOwnerSwitches, e.num(switches))
	if parent != "" {
		u.set(attrParent, e.s(parent))
	}
	if adjacent != "" {
		u.set(attrAdjacent, e.s(adjacent))
	}
	cctx, cancel := s.callCtx(ctx)
	out, err := s.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.cfg.TableName),
		Key:                                 s.key(id),
		ConditionExpression:                 aws.String(cond),
		UpdateExpression:                    aws.String(u.String()),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	cancel()
	if err != nil {
		if ccf, ok := conditionFailed(err); ok {
			// Someone else moved first; learn the row as it is now.
			owner := ""
			if len(ccf.Item) > 0 {
				if cur, perr := parseRow(ccf.Item); perr == nil {
					s.noteRow(cur)
					owner = cur.Owner
				}
			} else {
				s.forget(id)
			}
			return &NotAcquiredError{ShardID: id, Owner: owner, Reason: "row changed since observed"}
		}
		return fmt.Errorf("shard %s: take lease: %w", id, err)
	}
	nr, err := parseRow(out.Attributes)
	if err != nil {
		return fmt.Errorf("shard %s: take lease: %w", id, err)
	}
	t := s.addTenure(id, nr, now)
	s.noteRow(nr)
	s.log.Info("lease taken", zap.String("shard_id", id), zap.String("from", r.Owner),
		zap.Int64("counter", nr.Counter), zap.String("seq", nr.Checkpoint), zap.Uint64("tenure", t.id))
	return nil
}

// forget drops a row that no longer exists.
func (s *Store) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.snap, id)
	delete(s.obs, id)
}

// CheckpointSequence writes shard.Checkpoint (set by the engine's record
// processor checkpointer just before) if this worker still holds the
// lease and the value does not move backwards. On refusal the shard's
// in-memory checkpoint is put back to the stored one.
func (s *Store) CheckpointSequence(shard *par.ShardStatus) error {
	want := shard.GetCheckpoint()
	t := s.tenureOf(shard.ID)
	if t == nil {
		return fmt.Errorf("shard %s: checkpoint %s: %w", shard.ID, want, ErrLeaseLost)
	}
	t.op.Lock()
	defer t.op.Unlock()
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		s.mu.Lock()
		cur := t.checkpoint
		s.mu.Unlock()
		if err := checkAdvance(cur, want); err != nil {
			shard.SetCheckpoint(cur)
			return &CheckpointError{ShardID: shard.ID, Current: cur, Requested: want, Err: err}
		}
		now := s.clock.Now()
		e := newExpr()
		u := &update{e: e}
		u.set(attrCheckpoint, e.s(want))
		u.set(attrCheckpointedAt, e.s(wallString(now)))
		u.set(attrCheckpointer, e.s(s.cfg.WorkerID))
		u.set(attrOwnerSwitches, e.num(0))
		_, err := s.writeHeld(s.base, t, e, u, "checkpoint", true)
		if errors.Is(err, errAdopted) {
			lastErr = err
			continue // re-validate against the adopted row
		}
		if err != nil {
			s.mu.Lock()
			cur = t.checkpoint
			s.mu.Unlock()
			shard.SetCheckpoint(cur)
			return err
		}
		s.mu.Lock()
		t.checkpoint = want
		t.lastCheckpoint = now
		s.mu.Unlock()
		return nil
	}
	return fmt.Errorf("shard %s: checkpoint: %w", shard.ID, lastErr)
}

// RemoveLeaseOwner releases the lease gracefully: another worker can take
// it at once, without waiting for expiry. A lease taken ahead and not yet
// adopted by the engine is kept: the call comes from the consumer of an
// earlier tenure winding down.
func (s *Store) RemoveLeaseOwner(shardID string) error {
	if t := s.tenureOf(shardID); t != nil {
		s.mu.Lock()
		adopted := t.adopted
		s.mu.Unlock()
		if !adopted {
			return nil
		}
	}
	return s.release(s.base, shardID)
}

// Release is RemoveLeaseOwner for the pipeline (engine.Leases).
func (s *Store) Release(shardID string) error { return s.release(s.base, shardID) }

// RemoveLeaseInfo deletes the row of a shard that left the stream, only if
// nobody owns it or it reached SHARD_END.
func (s *Store) RemoveLeaseInfo(shardID string) error {
	e := newExpr()
	cond := "attribute_not_exists(" + e.n(attrOwner) + ") OR " + e.n(attrOwner) + " = " + e.s("") +
		" OR " + e.n(attrCheckpoint) + " = " + e.s(ShardEnd)
	cctx, cancel := s.callCtx(s.base)
	_, err := s.db.DeleteItem(cctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.cfg.TableName),
		Key:                       s.key(shardID),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	cancel()
	if err != nil {
		if _, ok := conditionFailed(err); ok {
			return fmt.Errorf("shard %s: remove lease row: %w", shardID, ErrLeaseHeld)
		}
		return fmt.Errorf("shard %s: remove lease row: %w", shardID, err)
	}
	s.forget(shardID)
	s.mu.Lock()
	delete(s.goneParents, shardID)
	s.mu.Unlock()
	return nil
}

// GetLeaseOwner reads the shard's owner with a consistent GetItem.
func (s *Store) GetLeaseOwner(shardID string) (string, error) {
	cctx, cancel := s.callCtx(s.base)
	defer cancel()
	out, err := s.db.GetItem(cctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.cfg.TableName), Key: s.key(shardID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", fmt.Errorf("shard %s: get lease owner: %w", shardID, err)
	}
	r, err := parseRow(out.Item)
	if err != nil {
		return "", fmt.Errorf("shard %s: get lease owner: %w", shardID, err)
	}
	if r.Owner == "" {
		return "", chk.NoLeaseOwnerErr
	}
	return r.Owner, nil
}

// ListActiveWorkers is not supported (no lease stealing).
func (s *Store) ListActiveWorkers(map[string]*par.ShardStatus) (map[string][]*par.ShardStatus, error) {
	return nil, ErrLeaseStealingUnsupported
}

// ClaimShard is not supported (no lease stealing).
func (s *Store) ClaimShard(*par.ShardStatus, string) error { return ErrLeaseStealingUnsupported }

// load is this worker's view of how leases are spread.
type load struct {
	held, target int
	free         int            // shards this worker may take now
	others       map[string]int // live leases per other worker
	claimsOut    int            // this worker's claims not yet turned into leases
	claimsOn     map[string]int // fresh claims (by anyone) on each worker's leases
}

// balance computes the fair share (the Java KCL's target): ceil(open
// shards / live workers), counting as live every other worker holding an
// unexpired lease. A worker takes no new lease beyond its share, and one
// below its share claims leases from workers above it.
func (s *Store) balance(id string, exists bool, list map[string]shardMeta, now time.Time) load {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := load{held: len(s.held), others: map[string]int{}, claimsOn: map[string]int{}}
	total := 0
	if !exists {
		if _, listed := list[id]; !listed {
			total++
		}
	}
	for sid := range list {
		if _, ok := s.snap[sid]; !ok {
			total++ // no row yet: open and free
			l.free++
		}
	}
	me := s.cfg.WorkerID
	for sid, c := range s.snap {
		r := c.row
		if r.Checkpoint == ShardEnd {
			continue
		}
		if _, listed := list[sid]; !listed && len(list) > 0 {
			continue // left the stream
		}
		total++
		if r.Owner == me {
			continue
		}
		if r.Owner != "" && r.Claim != "" && s.freshClaim(r, now) {
			l.claimsOn[r.Owner]++
			if r.Claim == me {
				l.claimsOut++
			}
		}
		if r.Owner == "" {
			if r.Claim == me && s.reservedFor(r, now) {
				l.claimsOut++ // handed over to us; the take follows
			}
			if !s.reservedForOther(r, now) {
				l.free++
			}
			continue
		}
		if o, ok := s.obs[sid]; ok && o.version == r.version() && now.Sub(o.since) >= s.cfg.FailoverTime {
			l.free++
			continue // expired: its owner may be gone
		}
		l.others[r.Owner]++
	}
	workers := len(l.others) + 1
	l.target = max(1, (total+workers-1)/workers)
	if s.cfg.MaxLeases > 0 {
		l.target = min(l.target, s.cfg.MaxLeases)
	}
	return l
}

// reservedFor reports whether r is a lease released for the claim it
// carries and still reserved for that claimant: for one failover time
// after the claim, long enough for a live claimant to see the release
// and take it, short enough that a claimant that died frees it soon.
func (s *Store) reservedFor(r row, now time.Time) bool {
	if r.Owner != "" || r.Claim == "" {
		return false
	}
	at, err := time.Parse(time.RFC3339Nano, r.ClaimedAt)
	return err == nil && now.Sub(at) < s.cfg.FailoverTime
}

func (s *Store) reservedForOther(r row, now time.Time) bool {
	return r.Claim != s.cfg.WorkerID && s.reservedFor(r, now)
}

// claim asks r's owner to hand the lease over (it sees the claim on its
// next renewal). It changes neither owner nor counter, so it never fences
// the owner out mid-batch.
func (s *Store) claim(ctx context.Context, r row, now time.Time) error {
	e := newExpr()
	cond := e.strIs(attrOwner, r.Owner) + " AND (attribute_not_exists(" + e.n(attrClaim) + ") OR " + e.n(attrClaim) + " = " + e.s("") +
		" OR " + e.n(attrClaim) + " = " + e.s(s.cfg.WorkerID) + " OR " + e.strIs(attrClaimedAt, r.ClaimedAt) + ")"
	u := &update{e: e}
	u.set(attrClaim, e.s(s.cfg.WorkerID))
	u.set(attrClaimedAt, e.s(wallString(now)))
	cctx, cancel := s.callCtx(ctx)
	out, err := s.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.cfg.TableName),
		Key:                       s.key(r.ShardID),
		ConditionExpression:       aws.String(cond),
		UpdateExpression:          aws.String(u.String()),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	cancel()
	if err != nil {
		if _, ok := conditionFailed(err); ok {
			return &NotAcquiredError{ShardID: r.ShardID, Owner: r.Owner, Reason: "claim raced"}
		}
		return fmt.Errorf("shard %s: claim lease: %w", r.ShardID, err)
	}
	if nr, perr := parseRow(out.Attributes); perr == nil {
		s.noteRow(nr)
	}
	s.log.Info("lease claimed for balance", zap.String("shard_id", r.ShardID), zap.String("owner", r.Owner))
	return &NotAcquiredError{ShardID: r.ShardID, Owner: r.Owner, Reason: "claimed; waiting for the owner to hand over"}
}
