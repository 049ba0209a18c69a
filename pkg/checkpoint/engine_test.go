package checkpoint_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	kclcfg "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	kcl "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	kclworker "github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	kcllogger "github.com/vmware/vmware-go-kcl-v2/logger"
	"go.uber.org/zap/zaptest"

	"github.com/shardwatch/shardwatch/pkg/checkpoint"
)

// TestEngineHandOver runs the real vmware-go-kcl-v2 worker with the store
// on kinesalite and DynamoDB Local: worker A reads a 2-shard stream and
// checkpoints, shuts down (releasing both leases), and worker B takes both
// at once and resumes exactly after A's checkpoints.
func TestEngineHandOver(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping kinesalite + DynamoDB Local")
	}
	ddb := dynamoDBLocal(t)
	kc := kinesalite(t)
	stream := "cptest-" + rand.Text()[:10]
	table := "cptest-" + rand.Text()[:12]
	t.Cleanup(func() { dropTable(t, ddb, table) })
	createStream(t, kc, stream, 2)

	put := func(from, n int) { putRecords(t, kc, stream, from, n) }
	rec := &recorder{seen: map[string]int{}}
	start := func(id string) (*kclworker.Worker, *checkpoint.Store) {
		return startWorker(t, id, stream, table, 10*time.Second, ddb, kc, rec)
	}

	a, storeA := start("A")
	put(0, 40)
	waitFor(t, 20*time.Second, "A reads 40 records and holds both shards", func() bool {
		return rec.total() >= 40 && len(storeA.Held()) == 2
	})
	a.Shutdown()
	if h := storeA.Held(); len(h) != 0 {
		t.Fatalf("A still holds %+v after Shutdown", h)
	}
	rowsA := map[string]string{}
	out, err := kc.ListShards(t.Context(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range out.Shards {
		owner, err := storeA.GetLeaseOwner(aws.ToString(sh.ShardId))
		if err == nil {
			t.Fatalf("%s still owned by %s after A's shutdown", aws.ToString(sh.ShardId), owner)
		}
		rowsA[aws.ToString(sh.ShardId)] = ""
	}

	put(40, 20)
	began := time.Now()
	b, storeB := start("B")
	defer b.Shutdown()
	waitFor(t, 20*time.Second, "B takes both shards and reads the 20 new records", func() bool {
		return rec.total() >= 60 && len(storeB.Held()) == 2
	})
	// Released leases are taken on the next passes, not after the 10 s
	// failover time.
	if took := time.Since(began); took > 8*time.Second {
		t.Fatalf("B needed %v to take released leases", took)
	}
	if d := rec.duplicates(); d != 0 {
		t.Fatalf("%d records delivered twice: B did not resume at A's checkpoints", d)
	}
	t.Logf("hand-over of 2 released leases took %v", time.Since(began).Round(10*time.Millisecond))
}

// TestEngineFailover cuts worker A off DynamoDB (a crash, as far as the
// table can tell, while A's shard consumers still run): A's tenures end on
// its own clock, B takes both shards after the failover time and resumes
// exactly at A's checkpoints; A's zombie consumers cannot checkpoint.
func TestEngineFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping kinesalite + DynamoDB Local")
	}
	ddb := dynamoDBLocal(t)
	kc := kinesalite(t)
	stream := "cptest-" + rand.Text()[:10]
	table := "cptest-" + rand.Text()[:12]
	t.Cleanup(func() { dropTable(t, ddb, table) })
	createStream(t, kc, stream, 2)
	const failover = 2 * time.Second

	recA, recB := &recorder{seen: map[string]int{}}, &recorder{seen: map[string]int{}}
	cut := &partition{DynamoDBAPI: ddb}
	a, storeA := startWorker(t, "A", stream, table, failover, cut, kc, recA)
	defer a.Shutdown()
	putRecords(t, kc, stream, 0, 40)
	waitFor(t, 20*time.Second, "A reads 40 records and holds both shards", func() bool {
		return recA.total() >= 40 && len(storeA.Held()) == 2
	})
	lost := []<-chan struct{}{storeA.Lost("shardId-000000000000"), storeA.Lost("shardId-000000000001")}
	lostAt := make([]time.Time, len(lost))
	var watchers sync.WaitGroup
	for i, ch := range lost {
		watchers.Go(func() {
			select {
			case <-ch:
				lostAt[i] = time.Now()
			case <-t.Context().Done():
			}
		})
	}
	cut.cut.Store(true)
	began := time.Now()

	b, storeB := startWorker(t, "B", stream, table, failover, ddb, kc, recB)
	defer b.Shutdown()
	putRecords(t, kc, stream, 40, 20)
	waitFor(t, 20*time.Second, "B takes both shards and reads the 20 new records", func() bool {
		return recB.total() >= 20 && len(storeB.Held()) == 2
	})
	took := time.Since(began)
	if took < failover {
		t.Fatalf("B took over after %v, before the failover time %v", took, failover)
	}
	watchers.Wait()
	firstTake := storeB.Held()[0].AcquiredAt
	for _, h := range storeB.Held() {
		if h.AcquiredAt.Before(firstTake) {
			firstTake = h.AcquiredAt
		}
	}
	for i, at := range lostAt {
		// The safety property: the old owner stops before the new one starts.
		if at.IsZero() || !at.Before(firstTake) {
			t.Fatalf("A's tenure %d ended at %v, B took its first lease at %v", i, at, firstTake)
		}
	}
	for i := range 40 {
		if _, ok := recB.seen[fmt.Sprint(i)]; ok {
			t.Fatalf("B re-read record %d that A had checkpointed", i)
		}
	}
	t.Logf("failover of 2 shards took %v (failover time %v)", took.Round(10*time.Millisecond), failover)
}

// partition fails every call once cut.
type partition struct {
	checkpoint.DynamoDBAPI
	cut atomic.Bool
}

var errPartitioned = errors.New("network partition")

func (p *partition) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if p.cut.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.UpdateItem(ctx, in, o...)
}

func (p *partition) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	if p.cut.Load() {
		return nil, errPartitioned
	}
	return p.DynamoDBAPI.Scan(ctx, in, o...)
}

func startWorker(t *testing.T, id, stream, table string, failover time.Duration, db checkpoint.DynamoDBAPI, kc *kinesis.Client, rec *recorder) (*kclworker.Worker, *checkpoint.Store) {
	t.Helper()
	store, err := checkpoint.New(t.Context(), checkpoint.Config{
		TableName: table, WorkerID: id, StreamName: stream, FailoverTime: failover, SnapshotTTL: 100 * time.Millisecond,
	}, checkpoint.Deps{DynamoDB: db, Shards: kc, Logger: zaptest.NewLogger(t).Named(id)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := kclcfg.NewKinesisClientLibConfig(table, stream, "us-east-1", id).
		WithTableName(table).WithInitialPositionInStream(kclcfg.TRIM_HORIZON).
		WithShardSyncIntervalMillis(200).WithFailoverTimeMillis(int(failover.Milliseconds())).
		WithLeaseRefreshWaitTime(int(store.Config().RenewInterval.Milliseconds())).
		WithIdleTimeBetweenReadsInMillis(100).WithMaxRecords(100).WithLogger(quiet{})
	w := kclworker.NewWorker(factory{rec}, cfg).WithKinesis(kc).WithCheckpointer(store)
	if err := w.Start(); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	return w, store
}

func putRecords(t *testing.T, kc *kinesis.Client, stream string, from, n int) {
	t.Helper()
	var entries []ktypes.PutRecordsRequestEntry
	for i := from; i < from+n; i++ {
		entries = append(entries, ktypes.PutRecordsRequestEntry{Data: []byte(fmt.Sprint(i)), PartitionKey: aws.String(fmt.Sprint("k", i))})
	}
	out, err := kc.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v (%d failed)", err, aws.ToInt32(out.FailedRecordCount))
	}
}

type recorder struct {
	mu   sync.Mutex
	seen map[string]int
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.seen {
		n += c - 1
	}
	return n
}

type factory struct{ r *recorder }

func (f factory) CreateProcessor() kcl.IRecordProcessor { return &processor{r: f.r} }

// processor counts records and checkpoints each batch's end.
type processor struct{ r *recorder }

func (p *processor) Initialize(*kcl.InitializationInput) {}

func (p *processor) ProcessRecords(in *kcl.ProcessRecordsInput) {
	if len(in.Records) == 0 {
		return
	}
	p.r.mu.Lock()
	// Keyed by sequence number, not payload: a PutRecords retried by the
	// SDK under load writes the same payload twice under two sequence
	// numbers, which is not a delivery duplicate.
	for _, r := range in.Records {
		p.r.seen[aws.ToString(r.SequenceNumber)]++
	}
	p.r.mu.Unlock()
	in.Checkpointer.Checkpoint(in.Records[len(in.Records)-1].SequenceNumber)
}

func (p *processor) Shutdown(in *kcl.ShutdownInput) {
	if in.ShutdownReason == kcl.TERMINATE {
		in.Checkpointer.Checkpoint(nil)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
}

func kinesalite(t *testing.T) *kinesis.Client {
	t.Helper()
	endpoint := os.Getenv("AWS_ENDPOINT_URL_KINESIS")
	if endpoint == "" {
		endpoint = "http://127.0.0.1:4567"
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	if err != nil {
		t.Fatal(err)
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(endpoint) })
	if _, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		var ne net.Error
		if os.Getenv("CI") == "" && errors.As(err, &ne) {
			t.Skipf("kinesalite not reachable at %s: %v", endpoint, err)
		}
		t.Fatalf("kinesalite at %s: %v", endpoint, err)
	}
	return kc
}

func createStream(t *testing.T, kc *kinesis.Client, name string, shards int32) {
	t.Helper()
	if _, err := kc.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)}); err != nil {
			t.Errorf("delete stream %s: %v", name, err)
		}
	})
	waitFor(t, 10*time.Second, "stream ACTIVE", func() bool {
		out, err := kc.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == ktypes.StreamStatusActive
	})
}

// quiet drops vmware-go-kcl-v2's logs.
type quiet struct{}

func (quiet) Debugf(string, ...any)                          {}
func (quiet) Infof(string, ...any)                           {}
func (quiet) Warnf(string, ...any)                           {}
func (quiet) Errorf(string, ...any)                          {}
func (quiet) Fatalf(string, ...any)                          {}
func (quiet) Panicf(string, ...any)                          {}
func (q quiet) WithFields(kcllogger.Fields) kcllogger.Logger { return q }
