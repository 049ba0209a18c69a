package processors

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// fencedItems emits one item of its own shard, one of another shard and
// one shared (no shard) at each flush.
type fencedItems struct{}

func (fencedItems) Process(context.Context, []records.Record, Emitter) error { return nil }

func (fencedItems) Flush(_ context.Context, out Emitter) error {
	str := func(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
	out.Put(Item{Table: "t", Key: "own", Attrs: map[string]types.AttributeValue{AttrShard: str("shardId-0")}})
	out.Put(Item{Table: "t", Key: "other", Attrs: map[string]types.AttributeValue{AttrShard: str("shardId-1")}})
	out.Put(Item{Table: "t", Key: "global", Attrs: map[string]types.AttributeValue{"sk": str("global")}})
	return nil
}

func (fencedItems) Close(context.Context, Reason, Emitter) error { return nil }

type keptItems struct{ items []Item }

func (k *keptItems) WriteItems(_ context.Context, it []Item) error {
	k.items = append(k.items, it...)
	return nil
}

// The pipeline fences the shard's own items with its tenure's lease token
// and leaves shared items (and a tenure-less pipeline's items) unfenced.
func TestPipelineFencesOwnItems(t *testing.T) {
	for _, tc := range []struct {
		tenure int64
		want   map[string]int64
	}{
		{7, map[string]int64{"own": 7, "other": 0, "global": 0}},
		{0, map[string]int64{"own": 0, "other": 0, "global": 0}},
	} {
		sink := &keptItems{}
		p, err := Open(context.Background(), Config{
			Stream:     "s",
			Processors: []Named{{Name: "f", Factory: func(context.Context, Env) (Processor, error) { return fencedItems{}, nil }}},
			NewDecoder: func() (Decoder, error) { return lineDecoder{}, nil },
			Sinks:      Sinks{Items: sink},
			Clock:      fixedClock{},
		}, Shard{Stream: "s", ShardID: "shardId-0", Tenure: tc.tenure})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Process(context.Background(), []Raw{{Data: []byte("ok1"), Meta: records.Meta{ShardID: "shardId-0", SequenceNumber: "1"}}}); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, it := range sink.items {
			got[it.Key] = it.Fence
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("tenure %d: fences (-want +got):\n%s", tc.tenure, diff)
		}
	}
}
