package processors

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// flushCounter emits one item named after it per Flush; urgent says
// whether it implements Urgent (and asks after every batch).
type flushCounter struct {
	name    string
	flushes int
}

func (f *flushCounter) Process(context.Context, []records.Record, Emitter) error { return nil }
func (f *flushCounter) Flush(_ context.Context, out Emitter) error {
	f.flushes++
	out.Put(Item{Table: "t", Key: f.name, Attrs: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: f.name}}})
	return nil
}
func (f *flushCounter) Close(context.Context, Reason, Emitter) error { return nil }

type urgentCounter struct{ flushCounter }

func (*urgentCounter) Urgent() bool { return true }

type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

// Between cadence flushes only the processors asking for it are flushed,
// and the pipeline stays not durable (no checkpoint) until the cadence
// flushes everyone.
func TestPipelineUrgentFlushesOnlyTheAsker(t *testing.T) {
	calm, urgent := &flushCounter{name: "calm"}, &urgentCounter{flushCounter{name: "urgent"}}
	clock := &stepClock{t: time.Unix(1000, 0)}
	sink := &keptItems{}
	p, err := Open(context.Background(), Config{
		Stream: "s",
		Processors: []Named{
			{Name: "calm", Factory: func(context.Context, Env) (Processor, error) { return calm, nil }},
			{Name: "urgent", Factory: func(context.Context, Env) (Processor, error) { return urgent, nil }},
		},
		NewDecoder:    func() (Decoder, error) { return lineDecoder{}, nil },
		Sinks:         Sinks{Items: sink},
		Clock:         clock,
		FlushInterval: 5 * time.Second,
	}, Shard{Stream: "s", ShardID: "shardId-0"})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(seq string) {
		t.Helper()
		if err := p.Process(context.Background(), []Raw{{Data: []byte("ok1"), Meta: records.Meta{ShardID: "shardId-0", SequenceNumber: seq}}}); err != nil {
			t.Fatal(err)
		}
	}
	batch("1") // first batch: the cadence flush is due (never flushed)
	if !p.Durable() {
		t.Fatal("after the first (cadence) flush: not durable")
	}
	clock.t = clock.t.Add(time.Second)
	batch("2")
	if p.Durable() {
		t.Error("after an urgent flush only: durable, want not (calm's results are not written)")
	}
	clock.t = clock.t.Add(5 * time.Second)
	batch("3")
	if !p.Durable() {
		t.Error("after the cadence flush: not durable")
	}
	var keys []string
	for _, it := range sink.items {
		keys = append(keys, it.Key)
	}
	// A cadence flush flushes and writes the urgent processor first: the
	// others' flushes (merges at a window's close) must not delay it.
	want := []string{"urgent", "calm", "urgent", "urgent", "calm"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("items written (-want +got):\n%s", diff)
	}
}
