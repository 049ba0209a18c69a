package engine

import (
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwatch/shardwatch/internal/testenv"
)

// The cache answers repeated listings from memory, passes paged and
// filtered ones through, and drops its listing when a shard is read to
// its end after a split (a reshard) or when it is older than MaxAge.
func TestShardCacheUntilReshard(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	base := testenv.Kinesis(t)
	stream := testenv.Name(t, "cache")
	testenv.CreateStream(t, stream, 2)
	cache := NewShardCache(time.Hour)
	now := time.Now()
	cache.now = func() time.Time { return now }
	sent := &testenv.Calls{}
	kc := kinesis.New(base.Options(), cache.Options, func(o *kinesis.Options) { o.APIOptions = append(o.APIOptions, sent.APIOption) })
	list := func() []types.Shard {
		t.Helper()
		out, err := kc.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Shards
	}
	for range 5 {
		if n := len(list()); n != 2 {
			t.Fatalf("listed %d shards; want 2", n)
		}
	}
	if n := sent.Get("ListShards"); n != 1 {
		t.Fatalf("5 listings sent %d ListShards; want 1", n)
	}
	if _, err := kc.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(stream), MaxResults: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if n := sent.Get("ListShards"); n != 2 {
		t.Fatalf("a paged listing was answered from the cache (%d sent)", n)
	}

	parent := aws.ToString(list()[0].ShardId)
	if _, err := kc.SplitShard(t.Context(), &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(parent),
		NewStartingHashKey: aws.String(new(big.Int).Lsh(big.NewInt(1), 126).String())}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := kc.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stream not ACTIVE after the split")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(list()); n != 2 {
		t.Fatalf("listed %d shards before anyone saw the reshard; want the cached 2", n)
	}
	// Read the closed parent to its end: the answer without a next
	// iterator drops the cache.
	it, err := kc.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String(parent), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	for iter := it.ShardIterator; iter != nil; {
		out, err := kc.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatal(err)
		}
		iter = out.NextShardIterator
		if time.Now().After(deadline) {
			t.Fatal("closed parent never ended")
		}
	}
	if n := len(list()); n != 4 {
		t.Fatalf("listed %d shards after the parent ended; want 4 (2 + 2 children)", n)
	}
	before := sent.Get("ListShards")
	list()
	now = now.Add(2 * time.Hour)
	list()
	if n := sent.Get("ListShards") - before; n != 1 {
		t.Fatalf("%d ListShards sent for one cached and one expired listing; want 1", n)
	}
	if hits, misses, inv := cache.Stats(); hits < 6 || misses < 3 || inv < 1 {
		t.Errorf("stats hits %d misses %d invalidations %d", hits, misses, inv)
	}
}
