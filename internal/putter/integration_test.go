package putter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/putter"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

// countingClient counts PutRecords calls.
type countingClient struct {
	*kinesis.Client
	calls atomic.Int32
}

func (c *countingClient) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, o ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	c.calls.Add(1)
	return c.Client.PutRecords(ctx, in, o...)
}

func TestProducerIntoKinesalite(t *testing.T) {
	client := testenv.Kinesis(t)
	stream := testenv.Name(t, "putter")
	testenv.CreateStream(t, stream, 4)

	cc := &countingClient{Client: client}
	p, err := putter.New(cc, putter.Config{Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := putter.NewProducer(p, putter.ProducerConfig{Buffer: 100}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- prod.Run(t.Context()) }()
	var want []string
	for i := range 2345 {
		d := fmt.Sprintf("record-%04d", i)
		want = append(want, d)
		if err := prod.Add(t.Context(), putter.Entry{PartitionKey: fmt.Sprint(i % 97), Data: []byte(d)}); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st := prod.Stats(); st.Sent != 2345 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if n := cc.calls.Load(); n < 5 || n > 50 {
		t.Errorf("%d PutRecords calls for 2345 records: batching broken", n)
	}

	var got []string
	shards, err := client.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	for _, sh := range shards.Shards {
		it, err := client.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := client.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(10000)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Records) > 0 {
			used++
		}
		for _, r := range out.Records {
			got = append(got, string(r.Data))
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stream content (-want +got):\n%s", diff)
	}
	if used != 4 {
		t.Errorf("records landed on %d of 4 shards", used)
	}
}

// TestUnknownStreamFailsWithoutRetry checks the error classification
// against a real server: ResourceNotFoundException is not retried.
func TestUnknownStreamFailsWithoutRetry(t *testing.T) {
	cc := &countingClient{Client: testenv.Kinesis(t)}
	p, err := putter.New(cc, putter.Config{Stream: testenv.Name(t, "missing")})
	if err != nil {
		t.Fatal(err)
	}
	res := p.Put(t.Context(), entries("a", "b"))
	if res.Sent != 0 || len(res.Failed) != 2 || cc.calls.Load() != 1 {
		t.Fatalf("sent %d failed %d calls %d; want 0, 2, 1", res.Sent, len(res.Failed), cc.calls.Load())
	}
	var nf *types.ResourceNotFoundException
	if f := res.Failed[0]; f.Code != "ResourceNotFoundException" || !errors.As(f.Err, &nf) {
		t.Errorf("failure code %q err %v", f.Code, f.Err)
	}
}
