package main

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"

	"github.com/shardwatch/shardwatch/internal/putter"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

// drainStream reads every record of every shard from TRIM_HORIZON until a
// GetRecords call comes back empty and caught up.
func drainStream(t *testing.T, client *kinesis.Client, stream string) []types.Record {
	t.Helper()
	ctx := t.Context()
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := client.ListShards(ctx, in)
		if err != nil {
			t.Fatalf("list shards: %v", err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	var recs []types.Record
	for _, sh := range shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("shard iterator %s: %v", aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatalf("get records %s: %v", aws.ToString(sh.ShardId), err)
			}
			recs = append(recs, out.Records...)
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return recs
}

// multisetDiff reports payloads that differ in count between want and got.
func multisetDiff(t *testing.T, want []string, got []string) {
	t.Helper()
	counts := make(map[string]int, len(want))
	for _, w := range want {
		counts[w]++
	}
	for _, g := range got {
		counts[g]--
	}
	bad := 0
	for k, n := range counts {
		if n != 0 {
			if bad < 5 {
				t.Errorf("payload count off by %d: %.120q", -n, k)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d distinct payloads differ (want %d records, got %d)", bad, len(want), len(got))
	}
}

func integrationEnv(t *testing.T, client *kinesis.Client) env {
	t.Helper()
	e, _ := testEnv(client, nil)
	e.newClient = func(context.Context, string) (putter.Client, error) { return client, nil }
	return e
}

// TestReplayZakerIntoKinesalite is the producer acceptance test: 10,000
// real access-log lines replayed at max speed come back byte-identical.
func TestReplayZakerIntoKinesalite(t *testing.T) {
	path := testenv.SharedData(t, "access/zaker-access-10k.log")
	client := testenv.Kinesis(t)
	stream := testenv.Name(t, "producer")
	testenv.CreateStream(t, stream, 3)
	want := scanLines(t, path)
	if len(want) != 10000 {
		t.Fatalf("%s has %d lines, want 10000", path, len(want))
	}

	e := integrationEnv(t, client)
	var stderr syncBuffer
	e.stderr = &stderr
	if err := run(t.Context(), []string{"replay", "--stream", stream, "--speed", "max", path}, e); err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr.String())
	}
	t.Log(lastLine(stderr.String()))

	recs := drainStream(t, client, stream)
	got := make([]string, len(recs))
	shards := map[string]bool{}
	for i, r := range recs {
		got[i] = string(r.Data)
		shards[aws.ToString(r.PartitionKey)] = true
	}
	if len(got) != 10000 {
		t.Errorf("read back %d records, want 10000", len(got))
	}
	multisetDiff(t, want, got)
	// Partition key = client IP: 605 distinct IPs in this file.
	if len(shards) != 605 {
		t.Errorf("%d distinct partition keys, want the 605 client IPs", len(shards))
	}
}

// TestAggregateIntoKinesalite replays with --aggregate and expands what
// the stream holds with the engine's deaggregator.
func TestAggregateIntoKinesalite(t *testing.T) {
	path := testenv.SharedData(t, "access/elastic-apache_logs.log")
	client := testenv.Kinesis(t)
	stream := testenv.Name(t, "producer-agg")
	testenv.CreateStream(t, stream, 2)
	want := scanLines(t, path)

	e := integrationEnv(t, client)
	var stderr syncBuffer
	e.stderr = &stderr
	args := []string{"replay", "--stream", stream, "--speed", "max", "--aggregate", "--aggregate-max-bytes", "262144", path}
	if err := run(t.Context(), args, e); err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr.String())
	}
	t.Log(lastLine(stderr.String()))

	recs := drainStream(t, client, stream)
	if len(recs) == 0 || len(recs) > len(want)/50 {
		t.Errorf("%d Kinesis records for %d lines: not aggregated", len(recs), len(want))
	}
	users, err := deaggregator.DeaggregateRecords(recs)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(users))
	for i, u := range users {
		got[i] = string(u.Data)
	}
	multisetDiff(t, want, got)
}

func lastLine(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}
