package orderflood

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// errKilled stands for a worker killed at a chosen step: the step fails,
// the context ends, and nothing after it runs.
var errKilled = errors.New("killed")

// killStore is the fake store with a hook before every PutIf of an
// alarm-history item: it can kill the worker between two alarm steps.
type killStore struct {
	*processortest.Store
	beforePutIf func(state string) error
}

func (s *killStore) PutIf(ctx context.Context, table, keyAttr string, item, cond map[string]types.AttributeValue) (bool, error) {
	if s.beforePutIf != nil {
		st, _ := window.GetStr(item, attrState)
		if err := s.beforePutIf(st); err != nil {
			return false, err
		}
	}
	return s.Store.PutIf(ctx, table, keyAttr, item, cond)
}

// killedOwner runs recs through a first owner of shard 1 that is killed
// at kill ("publishing": before the claimed -> publishing step,
// "publish": before the SNS publish, "confirm": after the publish,
// before the published record; "" never), without writing its batch.
// It returns the messages SNS accepted from it and its processor (a
// zombie, should the test wake it up).
func killedOwner(t *testing.T, f processors.Factory, store *processortest.Store, clock *processortest.Clock,
	recs []records.Record, kill string) ([]processors.Message, processors.Processor, *processortest.Publisher) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	die := func() error { cancel(); return errKilled }
	ks := &killStore{Store: store}
	pub := &processortest.Publisher{}
	switch kill {
	case "publishing":
		ks.beforePutIf = func(state string) error {
			if state == statePublishing {
				return die()
			}
			return nil
		}
	case "publish":
		pub.Fail = errKilled
		ks.beforePutIf = func(state string) error {
			if state == statePublished {
				t.Error("published record written after a failed publish")
			}
			return nil
		}
		pub.After = func(processors.Message) { cancel() }
	case "confirm":
		pub.After = func(processors.Message) { cancel() }
	}
	env := processors.Env{Shard: processors.Shard{Stream: "stream", ShardID: "shardId-000000000001", WorkerID: "worker-1"},
		Logger: zap.NewNop(), Clock: clock, Store: ks, Publisher: pub}
	p, err := f(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		recs[i].Meta = records.Meta{ShardID: env.Shard.ShardID, SequenceNumber: processortest.SeqNum(i), ArrivalTime: recs[i].Time}
	}
	// The batch is durable; the fleet decides the alarm a few flushes
	// later (the shard's frontier goes idle), and the worker dies in that
	// flush at kill.
	rec := &processortest.Recorder{}
	if err := p.Process(ctx, recs, rec); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 4 && len(store.Items(testApp.Tables.Alarms)) == 0 && ctx.Err() == nil; round++ {
		if err := store.Apply(rec.Items); err != nil {
			t.Fatal(err)
		}
		rec.Reset()
		clock.Advance(DefaultConfig().Idle + time.Second)
		err = p.Flush(ctx, rec)
	}
	if kill == "publish" {
		// SNS failing is no kill: the publish waits for the next flush.
		cancel()
	} else if kill != "" && err == nil {
		t.Fatalf("kill at %s: Flush returned no error", kill)
	}
	if kill == "" {
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Apply(rec.Items); err != nil {
			t.Fatal(err)
		}
	}
	return pub.Take(), p, pub
}

// TestKilledBetweenAlarmSteps kills the raiser at each step between its
// claim and its published record; the next owner of the shard replays
// the batch. Whatever the step, the history holds one published item
// and every message of the period carries the same de-duplication id,
// the one a FIFO topic drops repeats of. Only a kill after the publish,
// before its record, sends the message twice (a FIFO topic delivers it
// once; a standard topic's subscribers drop it by dedup_id).
func TestKilledBetweenAlarmSteps(t *testing.T) {
	for _, tc := range []struct {
		kill string
		sent int // messages SNS accepts, both owners together
	}{
		{kill: "publishing", sent: 1},
		{kill: "publish", sent: 1},
		{kill: "confirm", sent: 2},
	} {
		t.Run(tc.kill, func(t *testing.T) {
			f := newFactory(t, DefaultConfig())
			store, clock := processortest.NewStore(), clockAt(12)
			recs := orders(30, 0, 10, "A")
			first, _, _ := killedOwner(t, f, store, clock, recs, tc.kill)
			next := newLease(t, f, store, clock, "shardId-000000000001")
			next.batch(orders(30, 0, 10, "A")) // the batch is re-delivered
			settle(clock, next)
			all := append(first, next.msgs...)
			if len(all) != tc.sent {
				t.Fatalf("SNS accepted %d messages, want %d", len(all), tc.sent)
			}
			want := dedupID("order-flood", clockAt(9).Now())
			for _, m := range all {
				if m.DedupID != want || m.GroupID != want || m.Attributes["dedup_id"] != want || alarmOf(t, m).DedupID != want {
					t.Errorf("message ids: dedup %q group %q attribute %q body %q; want %q", m.DedupID, m.GroupID,
						m.Attributes["dedup_id"], alarmOf(t, m).DedupID, want)
				}
				if string(m.Body) != string(all[0].Body) {
					t.Errorf("repeat body differs:\n%s\n%s", m.Body, all[0].Body)
				}
			}
			h := history(t, store)
			if it := h["order-flood|2026-11-22T09:41:09Z"]; len(h) != 1 || it["published"] != "BOOL:true" || it["state"] != "S:published" {
				t.Errorf("history = %v; want one published item", h)
			}
		})
	}
}

// TestSNSFailureRetried: a failed publish is published on a later flush,
// once; the history says publishing until then.
func TestSNSFailureRetried(t *testing.T) {
	f := newFactory(t, DefaultConfig())
	store, clock := processortest.NewStore(), clockAt(12)
	a := newLease(t, f, store, clock, "shardId-000000000001")
	a.h.Publisher.Fail = errors.New("sns down")
	a.batch(orders(30, 0, 10, "A"))
	settle(clock, a)
	if got := history(t, store)["order-flood|2026-11-22T09:41:09Z"]["state"]; got != "S:publishing" {
		t.Fatalf("state after a failed publish = %s; want publishing", got)
	}
	a.h.Publisher.Fail = nil
	settle(clock, a)
	if len(a.msgs) != 1 {
		t.Errorf("%d messages, want 1", len(a.msgs))
	}
	if got := history(t, store)["order-flood|2026-11-22T09:41:09Z"]["state"]; got != "S:published" {
		t.Errorf("state = %s; want published", got)
	}
}

// TestZombieDoesNotPublish: the first owner claims and is stopped before
// it publishes (SIGSTOP); the next owner takes the claim over and
// publishes; the first wakes up, and its publish step finds the claim
// gone: one message.
func TestZombieDoesNotPublish(t *testing.T) {
	f := newFactory(t, DefaultConfig())
	store, clock := processortest.NewStore(), clockAt(12)
	// The zombie: claimed, then frozen before the claimed -> publishing
	// step. Its deliver runs again below, after the takeover.
	ks := &killStore{Store: store}
	frozen := true
	ks.beforePutIf = func(state string) error {
		if frozen && state == statePublishing {
			return errors.New("store unreachable")
		}
		return nil
	}
	pub := &processortest.Publisher{}
	env := processors.Env{Shard: processors.Shard{Stream: "stream", ShardID: "shardId-000000000001", WorkerID: "worker-1"},
		Logger: zap.NewNop(), Clock: clock, Store: ks, Publisher: pub}
	z, err := f(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	recs := orders(30, 0, 10, "A")
	for i := range recs {
		recs[i].Meta = records.Meta{ShardID: env.Shard.ShardID, SequenceNumber: processortest.SeqNum(i), ArrivalTime: recs[i].Time}
	}
	rec := &processortest.Recorder{}
	if err := z.Process(t.Context(), recs, rec); err != nil {
		t.Fatal(err)
	}
	// The batch is durable; the alarm is claimed, its publish deferred.
	for range 10 {
		if len(store.Items(testApp.Tables.Alarms)) == 1 {
			break
		}
		if err := z.Flush(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		if err := store.Apply(rec.Items); err != nil {
			t.Fatal(err)
		}
		rec.Reset()
		clock.Advance(DefaultConfig().Idle + time.Second)
	}
	if len(store.Items(testApp.Tables.Alarms)) != 1 {
		t.Fatal("the zombie claimed no alarm")
	}
	next := newLease(t, f, store, clock, "shardId-000000000001")
	next.batch(orders(30, 0, 10, "A"))
	settle(clock, next)
	frozen = false
	if err := z.Flush(t.Context(), &processortest.Recorder{}); err != nil {
		t.Fatal(err)
	}
	if n := len(pub.Messages) + len(next.msgs); n != 1 || len(next.msgs) != 1 {
		t.Errorf("zombie sent %d, next owner %d; want 0 and 1", len(pub.Messages), len(next.msgs))
	}
}
