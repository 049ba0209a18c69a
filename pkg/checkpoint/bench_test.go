package checkpoint_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"

	"github.com/shardwatch/shardwatch/pkg/checkpoint"
	"github.com/shardwatch/shardwatch/pkg/checkpoint/checkpointtest"
	"github.com/shardwatch/shardwatch/pkg/checkpoint/internal/ddbfake"
)

func benchStore(b *testing.B, db checkpoint.DynamoDBAPI, tableName string, shards int) (*checkpoint.Store, []*par.ShardStatus) {
	b.Helper()
	var list []checkpointtest.Shard
	for i := range shards {
		list = append(list, checkpointtest.Shard{ID: fmt.Sprintf("shardId-%012d", i)})
	}
	s, err := checkpoint.New(b.Context(), checkpoint.Config{TableName: tableName, WorkerID: "A", StreamName: "s", SnapshotTTL: time.Hour},
		checkpoint.Deps{DynamoDB: db, Shards: checkpointtest.NewShards(list...)})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Init(); err != nil {
		b.Fatal(err)
	}
	ss := make([]*par.ShardStatus, shards)
	for i, sh := range list {
		ss[i] = &par.ShardStatus{ID: sh.ID, Mux: &sync.RWMutex{}}
	}
	return s, ss
}

// FetchCheckpoint of a shard this worker does not hold, snapshot fresh:
// the per-shard cost of an engine pass.
func BenchmarkFetchCheckpointFromSnapshot(b *testing.B) {
	s, ss := benchStore(b, ddbfake.New(), table, 64)
	if err := s.FetchCheckpoint(ss[0]); err != nil && err != chk.ErrSequenceIDNotFound {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.FetchCheckpoint(ss[i%len(ss)])
		i++
	}
}

// CheckpointSequence on the in-memory fake: the store's own overhead
// (expression building, parsing the returned row) plus the fake's.
func BenchmarkCheckpointFake(b *testing.B) {
	s, ss := benchStore(b, ddbfake.New(), table, 1)
	if err := s.GetLease(ss[0], "A"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 1
	for b.Loop() {
		ss[0].SetCheckpoint(fmt.Sprint(n))
		if err := s.CheckpointSequence(ss[0]); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// Renewal round trip against DynamoDB Local.
func BenchmarkRenewDynamoDBLocal(b *testing.B) {
	client := dynamoDBLocalB(b)
	name := "cpbench-" + fmt.Sprint(time.Now().UnixNano())
	defer dropTable(b, client, name)
	s, ss := benchStore(b, client, name, 1)
	if err := s.GetLease(ss[0], "A"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.GetLease(ss[0], "A"); err != nil {
			b.Fatal(err)
		}
	}
}
