package engine_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kclcfg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	kclworker "github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	kcllogger "github.com/vmware/vmware-go-kcl-v2/logger"

	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/internal/engine"
	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/checkpoint"
)

// TestCoordinationCost measures what leasing costs at the consumer's
// default timing (shard_sync_interval 100 ms, failover_time 10 s, renewal
// asked every 1.67 s and written when the lease is 5 s old, lease snapshot
// every 1 s, shard list cached until a reshard): 2 vmware-go-kcl-v2 workers with the fenced store share an idle
// 8-shard stream; once balanced, every request the clients really send is
// counted for a window. docs/reliability.md extrapolates the figures.
func TestCoordinationCost(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	const shards, workers, window = 8, 2, 8 * time.Second
	def := config.Defaults()
	stream, table := testenv.Name(t, "cost"), testenv.Name(t, "costlease")
	testenv.CreateStream(t, stream, shards)
	baseK, baseD := testenv.Kinesis(t), testenv.DynamoDB(t)
	t.Cleanup(func() {
		baseD.DeleteTable(t.Context(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})

	type member struct {
		kcalls, dcalls testenv.Calls
		w              *kclworker.Worker
		store          *checkpoint.Store
	}
	var ms []*member
	var runs sync.WaitGroup
	for i := range workers {
		m := &member{}
		id := fmt.Sprintf("w%d", i)
		cache := engine.NewShardCache(engine.DefaultShardCacheMaxAge)
		kc := kinesis.New(baseK.Options(), cache.Options, func(o *kinesis.Options) { o.APIOptions = append(o.APIOptions, m.kcalls.APIOption) })
		ddb := dynamodb.New(baseD.Options(), func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, m.dcalls.APIOption) })
		store, err := checkpoint.New(t.Context(), checkpoint.Config{
			TableName: table, WorkerID: id, StreamName: stream, FailoverTime: def.FailoverTime, RenewInterval: def.RenewInterval(),
		}, checkpoint.Deps{DynamoDB: ddb, Shards: kc})
		if err != nil {
			t.Fatal(err)
		}
		cfg := kclcfg.NewKinesisClientLibConfig(table, stream, testenv.Region, id).
			WithTableName(table).WithInitialPositionInStream(kclcfg.TRIM_HORIZON).
			WithShardSyncIntervalMillis(int(def.ShardSync.Milliseconds())).
			WithFailoverTimeMillis(int(def.FailoverTime.Milliseconds())).
			WithLeaseRefreshWaitTime(int(store.Config().RenewInterval.Milliseconds())).
			WithIdleTimeBetweenReadsInMillis(int(def.PollInterval.Milliseconds())).
			WithCallProcessRecordsEvenForEmptyRecordList(true).WithLogger(quiet{})
		m.w = kclworker.NewWorker(idle{store: store}, cfg).WithKinesis(kc).WithCheckpointer(store)
		m.store = store
		if err := m.w.Start(); err != nil {
			t.Fatal(err)
		}
		runs.Go(func() { store.Run(t.Context()) })
		ms = append(ms, m)
	}
	t.Cleanup(func() {
		for _, m := range ms {
			m.w.Shutdown()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for len(ms[0].store.Held()) != shards/2 || len(ms[1].store.Held()) != shards/2 {
		if time.Now().After(deadline) {
			t.Fatalf("not balanced: %d and %d leases", len(ms[0].store.Held()), len(ms[1].store.Held()))
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	before := make([][2]map[string]int64, len(ms))
	for i, m := range ms {
		before[i] = [2]map[string]int64{m.kcalls.Snapshot(), m.dcalls.Snapshot()}
	}
	start := time.Now()
	time.Sleep(window) // the measurement window itself, not synchronisation
	secs := time.Since(start).Seconds()
	total := map[string]float64{}
	for i, m := range ms {
		for j, now := range []map[string]int64{m.kcalls.Snapshot(), m.dcalls.Snapshot()} {
			for op, n := range now {
				total[op] += float64(n - before[i][j][op])
			}
		}
	}
	perWorker := func(op string) float64 { return total[op] / secs / workers }
	perShard := func(op string) float64 { return total[op] / secs / shards }
	for _, op := range []string{"Scan", "GetItem", "UpdateItem", "ListShards", "GetRecords", "GetShardIterator"} {
		t.Logf("%-16s %6.3f per worker-second  %6.3f per shard-second", op, perWorker(op), perShard(op))
	}
	// Read units of one Scan of this table, to extrapolate to 200 shards.
	out, err := baseD.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true), ReturnConsumedCapacity: ddbtypes.ReturnConsumedCapacityTotal})
	if err != nil {
		t.Fatal(err)
	}
	var bytes int
	for _, it := range out.Items {
		for k, v := range it {
			bytes += len(k)
			switch v := v.(type) {
			case *ddbtypes.AttributeValueMemberS:
				bytes += len(v.Value)
			case *ddbtypes.AttributeValueMemberN:
				bytes += len(v.Value)
			}
		}
	}
	t.Logf("lease rows: %d, about %d bytes each (a 1 MB Scan page holds ~%d rows)", len(out.Items), bytes/max(1, len(out.Items)), (1<<20)/max(1, bytes/max(1, len(out.Items))))

	if s := perWorker("Scan"); s > 1.2 {
		t.Errorf("%.2f Scan pages per worker-second; want <= 1 (+ slack)", s)
	}
	if g := total["GetItem"]; g != 0 {
		t.Errorf("%v GetItem calls; want 0 (the snapshot answers)", g)
	}
	if l := perWorker("ListShards"); l > 0.1 {
		t.Errorf("%.2f ListShards per worker-second; want ~0 (cached until a reshard)", l)
	}
	if u := perShard("UpdateItem"); u > 0.3 {
		t.Errorf("%.2f UpdateItem per shard-second on an idle stream; want <= 0.25 (a lease written at most every failover_time/2: 1-2 writes per lease in the window)", u)
	}
}

// idle processes nothing and checkpoints nothing (coordination alone);
// it hands a lease claimed for balance over, as the engine's processor
// does.
type idle struct {
	store *checkpoint.Store
	shard string
}

func (i idle) CreateProcessor() kcl.IRecordProcessor { return &idle{store: i.store} }

func (i *idle) Initialize(in *kcl.InitializationInput) { i.shard = in.ShardId }

func (i *idle) ProcessRecords(*kcl.ProcessRecordsInput) {
	if i.store.Claimed(i.shard) {
		i.store.Release(i.shard)
	}
}

func (*idle) Shutdown(*kcl.ShutdownInput) {}

type quiet struct{}

func (quiet) Debugf(string, ...any)                          {}
func (quiet) Infof(string, ...any)                           {}
func (quiet) Warnf(string, ...any)                           {}
func (quiet) Errorf(string, ...any)                          {}
func (quiet) Fatalf(string, ...any)                          {}
func (quiet) Panicf(string, ...any)                          {}
func (q quiet) WithFields(kcllogger.Fields) kcllogger.Logger { return q }
