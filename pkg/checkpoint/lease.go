package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
	"go.uber.org/zap"
)

// tenure is one continuous holding of a shard's lease by this process.
type tenure struct {
	shardID string
	id      uint64
	// token is the lease counter at the take: a later tenure of the shard,
	// on any worker, has a higher one (fences result writes).
	token int64
	// op serialises the tenure's writes (renewal goroutine, processing
	// goroutine, release) so the expected counter is always the last one
	// written.
	op sync.Mutex

	// Guarded by Store.mu; written only while op is also held.
	counter        int64
	checkpoint     string
	acquiredAt     time.Time
	renewStarted   time.Time // start of the last successful write: local expiry base
	lastRenewal    time.Time
	lastCheckpoint time.Time
	// ambiguous: the last write failed without an answer, so it may have
	// landed (counter already bumped).
	ambiguous bool
	lost      chan struct{}
	closed    bool
	// claimed: another worker asked for this lease to balance the fleet;
	// the holder should hand it over gracefully (see Claimed).
	claimed bool
	// adopted: the engine knows it holds the lease (its GetLease
	// returned it) and renews it; a lease taken ahead by takeMore is not
	// adopted until the engine's next pass reaches it.
	adopted bool
}

// Lease is a handle on one tenure of a shard's lease.
type Lease struct {
	ShardID string
	// Tenure numbers this process's tenures; a new take gets a new number.
	Tenure uint64
	// Token is the lease counter at the take. Every later tenure of the
	// shard, on any worker, has a higher token, so it fences result
	// writes (processors.Shard.Tenure) across the fleet.
	Token int64
	lost  <-chan struct{}
}

// Lost is closed when the tenure ends: a renewal or checkpoint failed its
// condition, the lease expired locally, or it was released. The zero
// Lease returns nil (never closes).
func (l Lease) Lost() <-chan struct{} { return l.lost }

// LeaseInfo describes a held lease for metrics.
type LeaseInfo struct {
	ShardID        string
	Tenure         uint64
	Counter        int64
	Checkpoint     string
	AcquiredAt     time.Time
	LastRenewal    time.Time
	LastCheckpoint time.Time // zero until the tenure checkpoints
}

// errAdopted: an ambiguous earlier write turned out to have landed; the
// tenure adopted the row and the caller should retry.
var errAdopted = errors.New("adopted the row written by an unanswered call")

func (s *Store) addTenure(id string, r row, now time.Time) *tenure {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextTenure++
	t := &tenure{
		shardID: id, id: s.nextTenure, token: r.Counter, counter: r.Counter, checkpoint: r.Checkpoint,
		acquiredAt: now, renewStarted: now, lastRenewal: now, lost: make(chan struct{}),
	}
	s.held[id] = t
	delete(s.obs, id)
	return t
}

func (s *Store) tenureOf(id string) *tenure {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[id]
}

// markLost ends the tenure once: closes Lost and forgets it.
func (s *Store) markLost(t *tenure, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	close(t.lost)
	if s.held[t.shardID] == t {
		delete(s.held, t.shardID)
	}
	if reason != "released" {
		s.log.Warn("lease lost", zap.String("shard_id", t.shardID), zap.Uint64("tenure", t.id), zap.String("reason", reason))
	}
}

// Lease returns the current tenure of shardID, if this worker holds it.
func (s *Store) Lease(shardID string) (Lease, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.held[shardID]
	if !ok {
		return Lease{}, false
	}
	return Lease{ShardID: shardID, Tenure: t.id, Token: t.token, lost: t.lost}, true
}

// Lost returns the current tenure's Lost channel, nil when the shard is
// not held (engine.Leases).
func (s *Store) Lost(shardID string) <-chan struct{} {
	l, _ := s.Lease(shardID)
	return l.lost
}

// Token returns the current tenure's lease token, 0 when the shard is not
// held (engine.Leases).
func (s *Store) Token(shardID string) int64 {
	l, _ := s.Lease(shardID)
	return l.Token
}

// IsLeaseLost reports whether err means the lease is gone (engine.Leases).
func (s *Store) IsLeaseLost(err error) bool { return IsLeaseLost(err) }

// Held lists the leases this worker holds, sorted by shard id.
func (s *Store) Held() []LeaseInfo {
	s.mu.Lock()
	out := make([]LeaseInfo, 0, len(s.held))
	for _, t := range s.held {
		out = append(out, LeaseInfo{
			ShardID: t.shardID, Tenure: t.id, Counter: t.counter, Checkpoint: t.checkpoint,
			AcquiredAt: t.acquiredAt, LastRenewal: t.lastRenewal, LastCheckpoint: t.lastCheckpoint,
		})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b LeaseInfo) int { return strings.Compare(a.ShardID, b.ShardID) })
	return out
}

// renew bumps the lease counter. A transient failure is tolerated while
// one more renewal can still land before FailoverTime (the engine drops
// the shard on any renewal error); after that the tenure is lost.
func (s *Store) renew(shard *par.ShardStatus) error {
	t := s.tenureOf(shard.ID)
	if t == nil {
		return fmt.Errorf("shard %s: renew lease: %w", shard.ID, ErrLeaseLost)
	}
	s.mu.Lock()
	adopted, lastWrite := t.adopted, t.renewStarted
	s.mu.Unlock()
	if !adopted {
		// The engine has not started this tenure (taken ahead): the caller
		// is the consumer of an earlier tenure still winding down after a
		// hand-over. It must stop, not keep a tenure it does not process.
		return fmt.Errorf("shard %s: renew lease: earlier tenure: %w", shard.ID, ErrLeaseLost)
	}
	if s.clock.Now().Sub(lastWrite) < s.cfg.RenewAfter {
		// A checkpoint (every write bumps the counter) renewed it lately.
		return nil
	}
	t.op.Lock()
	defer t.op.Unlock()
	for range 2 {
		e := newExpr()
		u := &update{e: e}
		out, err := s.writeHeld(s.base, t, e, u, "renew", true)
		if errors.Is(err, errAdopted) {
			continue
		}
		if err == nil {
			if lt, perr := time.Parse(time.RFC3339Nano, out.LeaseTimeout); perr == nil {
				shard.SetLeaseTimeout(lt)
			}
			return nil
		}
		if IsLeaseLost(err) {
			return err
		}
		now := s.clock.Now()
		s.mu.Lock()
		deadline := t.renewStarted.Add(s.cfg.FailoverTime)
		s.mu.Unlock()
		if !now.Add(s.cfg.RenewInterval).Before(deadline) {
			s.markLost(t, "renewals failing until failover time: "+err.Error())
			return fmt.Errorf("%w: %w", ErrLeaseLost, err)
		}
		s.log.Warn("lease renewal failed; retrying at the next renewal", zap.String("shard_id", shard.ID), zap.Error(err))
		return nil
	}
	return fmt.Errorf("shard %s: renew lease: %w", shard.ID, errAdopted)
}

// writeHeld runs one fenced write of a held tenure: condition AssignedTo =
// me AND LeaseCounter = expected, bumping the counter and LeaseTimeout on
// top of u. Caller holds t.op. With checkExpiry, a tenure whose last
// successful write started FailoverTime ago is lost without trying: another
// worker may already have taken it.
func (s *Store) writeHeld(ctx context.Context, t *tenure, e *expr, u *update, op string, checkExpiry bool) (row, error) {
	start := s.clock.Now()
	s.mu.Lock()
	closed, counter, base, ambiguous := t.closed, t.counter, t.renewStarted, t.ambiguous
	s.mu.Unlock()
	if closed {
		return row{}, fmt.Errorf("shard %s: %s: %w", t.shardID, op, ErrLeaseLost)
	}
	if checkExpiry && start.Sub(base) >= s.cfg.FailoverTime {
		s.markLost(t, "expired locally: no successful write for the failover time")
		return row{}, fmt.Errorf("shard %s: %s: expired locally: %w", t.shardID, op, ErrLeaseLost)
	}
	me := s.cfg.WorkerID
	cond := e.heldBy(me, counter)
	u.set(attrCounter, e.num(counter+1))
	u.set(attrLeaseTimeout, e.s(wallString(start.Add(s.cfg.FailoverTime))))
	cctx, cancel := s.callCtx(ctx)
	out, err := s.db.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.cfg.TableName),
		Key:                                 s.key(t.shardID),
		ConditionExpression:                 aws.String(cond),
		UpdateExpression:                    aws.String(u.String()),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	cancel()
	if err == nil {
		r, perr := parseRow(out.Attributes)
		if perr != nil {
			return row{}, fmt.Errorf("shard %s: %s: %w", t.shardID, op, perr)
		}
		s.mu.Lock()
		t.counter, t.renewStarted, t.lastRenewal, t.ambiguous = r.Counter, start, s.clock.Now(), false
		t.claimed = s.freshClaim(r, start) && r.Claim != me
		s.mu.Unlock()
		s.noteRow(r)
		return r, nil
	}
	ccf, ok := conditionFailed(err)
	if !ok {
		s.mu.Lock()
		t.ambiguous = true
		s.mu.Unlock()
		return row{}, fmt.Errorf("shard %s: %s: %w", t.shardID, op, err)
	}
	var cur row
	if len(ccf.Item) > 0 {
		cur, _ = parseRow(ccf.Item)
	}
	if ambiguous && cur.Owner == me && cur.HasCounter && cur.Counter == counter+1 {
		// Our unanswered previous write landed: nobody else writes
		// AssignedTo = me, so the row is still ours.
		s.mu.Lock()
		t.counter, t.checkpoint, t.ambiguous = cur.Counter, cur.Checkpoint, false
		s.mu.Unlock()
		return row{}, errAdopted
	}
	if cur.ShardID != "" {
		s.noteRow(cur)
	} else {
		s.forget(t.shardID)
	}
	s.markLost(t, fmt.Sprintf("%s fenced out: owner now %q, counter %d (expected %d)", op, cur.Owner, cur.Counter, counter))
	return row{}, fmt.Errorf("shard %s: %s: owner now %q: %w", t.shardID, op, cur.Owner, ErrLeaseLost)
}

// release removes AssignedTo (fenced) so any worker can take the shard at
// once. The tenure ends whatever the outcome.
func (s *Store) release(ctx context.Context, shardID string) error {
	t := s.tenureOf(shardID)
	if t == nil {
		return fmt.Errorf("shard %s: release: not held: %w", shardID, ErrLeaseLost)
	}
	t.op.Lock()
	defer t.op.Unlock()
	var err error
	for range 2 {
		e := newExpr()
		u := &update{e: e}
		u.del(attrOwner)
		// A claim stays: the released row is reserved for its claimant
		// for a while (see reservedFor), so the releasing worker, or a
		// third one, does not take back a lease handed over for balance.
		// No local-expiry check: the fence alone decides, and releasing a
		// lease nobody took yet spares the next owner the expiry wait.
		_, err = s.writeHeld(ctx, t, e, u, "release", false)
		if !errors.Is(err, errAdopted) {
			break
		}
	}
	s.markLost(t, "released")
	if err != nil {
		return err
	}
	s.log.Info("lease released", zap.String("shard_id", shardID), zap.Uint64("tenure", t.id))
	return nil
}

// ReleaseAll releases every held lease (shutdown). ctx bounds the whole
// release; errors are joined.
func (s *Store) ReleaseAll(ctx context.Context) error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.held))
	for id := range s.held {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	var errs []error
	for _, id := range ids {
		if err := s.release(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Claimed reports whether another worker asked for the shard's lease to
// balance the fleet. The holder should then finish its batch, checkpoint
// and Release, so the claimant takes over without duplicates.
//
// A claim is seen on the tenure's next write or in the next lease
// snapshot (see Run), whichever comes first.
func (s *Store) Claimed(shardID string) bool {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.held[shardID]
	if t == nil || t.closed {
		return false
	}
	if t.claimed {
		return true
	}
	c, ok := s.snap[shardID]
	me := s.cfg.WorkerID
	return ok && c.Owner == me && c.Counter == t.counter && c.Claim != "" && c.Claim != me && s.freshClaim(c.row, now)
}

// freshClaim reports whether r carries a claim young enough to honour: a
// claim nobody acted on for a few failover periods is stale (its claimant
// may be gone). Callers hold s.mu or own r.
func (s *Store) freshClaim(r row, now time.Time) bool {
	if r.Claim == "" {
		return false
	}
	at, err := time.Parse(time.RFC3339Nano, r.ClaimedAt)
	if err != nil {
		return false
	}
	return now.Sub(at) < 3*s.cfg.FailoverTime
}
