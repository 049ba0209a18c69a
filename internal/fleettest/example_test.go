package fleettest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/internal/testenv"
)

// TestExampleConfigLiveAlarm runs the real consumer with
// deploy/consumer.example.yaml (every built-in processor, its flush and
// lease settings; only the stream, tables, topic and local paths
// replaced) on live traffic: an order burst raises one alarm counting
// every order of the burst, and each worker's /metrics reports the
// DynamoDB units it consumed per table.
func TestExampleConfigLiveAlarm(t *testing.T) {
	e := newEnv(t, 4)
	topic, queue := e.setup()
	cfg := e.exampleConfig(t, topic)
	w1, w2 := e.start(cfg, "w1"), e.start(cfg, "w2")

	// Live traffic on every shard until the test ends.
	ctx, stop := context.WithCancel(context.Background())
	live := make(chan struct{})
	go func() {
		defer close(live)
		for i := 0; ctx.Err() == nil; i++ {
			e.putQuiet(ctx, 40, fmt.Sprintf("live%d", i))
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { stop(); <-live })

	// Every shard's orderflood frontier is written when its lease starts.
	waitFor(t, 2*time.Minute, "4 shards started", func() bool {
		if w1.exited() || w2.exited() {
			t.Fatal("a worker exited")
		}
		out, err := e.ddb.Query(context.Background(), &dynamodb.QueryInput{
			TableName: aws.String(e.app + "-results"), KeyConditionExpression: aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: "orders#order-flood#frontier"}},
		})
		return err == nil && len(out.Items) == 4
	})

	// 40 orders in one put, random keys (all shards): threshold 30.
	const burst = 40
	put := time.Now()
	var entries []types.PutRecordsRequestEntry
	for i := range burst {
		o := fmt.Sprintf(`{"invoice_no":"X%d-%d","stock_code":"85123A","description":"WHITE HANGING HEART","quantity":2,"invoice_date":"%s","unit_price":2.55,"customer_id":"1%04d","country":"United Kingdom"}`,
			put.UnixNano(), i, put.UTC().Format("2006-01-02 15:04:05"), i)
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(o), PartitionKey: aws.String(strconv.Itoa(rand.IntN(1 << 30)))})
	}
	res, err := e.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries})
	if err != nil || aws.ToInt32(res.FailedRecordCount) != 0 {
		t.Fatalf("put orders: %v (%d failed)", err, aws.ToInt32(res.FailedRecordCount))
	}

	// The alarm as the SQL reads it, from the arrival times Kinesis gave
	// the orders (one put stamps them within a few milliseconds, not at
	// once): the first arrival time whose 15 s window holds 30 orders.
	wantTime, wantOrders := firstBreach(arrivals(t, e, res), 15*time.Second, 30)

	var alarm struct {
		Time   time.Time `json:"time"`
		Orders int64     `json:"orders"`
		Shards int       `json:"shards"`
		Text   string    `json:"text"`
	}
	latency := waitFor(t, 2*time.Minute, "the alarm on SQS", func() bool {
		for _, structure := range receiveAlarms(t, queue) {
			if err := json.Unmarshal([]byte(structure["sqs"]), &alarm); err != nil {
				t.Fatalf("sqs entry %q: %v", structure["sqs"], err)
			}
			return true
		}
		return false
	})
	t.Logf("put to alarm on SQS: %s (polled every 100 ms); %s", latency, alarm.Text)
	if !alarm.Time.Equal(wantTime) || alarm.Orders != wantOrders || alarm.Shards < 2 {
		t.Errorf("alarm at %s counts %d orders on %d shards; offline from the arrival times: %s, %d orders, on several shards",
			alarm.Time, alarm.Orders, alarm.Shards, wantTime, wantOrders)
	}

	// What each worker consumed, per table, as operators see it.
	for _, w := range []*worker{w1, w2} {
		units := scrapeUnits(t, w.ops)
		for _, table := range []string{e.app, e.app + "-results"} {
			if units[table] <= 0 {
				t.Errorf("worker %s: shardwatch_dynamodb_units_total{table=%q,kind=\"write\"} = %v; want > 0 (all: %v)", w.id, table, units[table], units)
			}
		}
	}
	all := map[string]float64{}
	for _, w := range []*worker{w1, w2} {
		for k, v := range scrapeUnits(t, w.ops) {
			all[k] += v
		}
	}
	for _, table := range []string{e.app + "-alarms", e.app + "-orders"} {
		if all[table] <= 0 {
			t.Errorf("fleet: no write units on %s: %v", table, all)
		}
	}
}

// setup runs `consumer setup` for the app (tables, alarm topic), deletes
// the tables when the test ends, and subscribes a queue to the topic.
func (e *env) setup() (topic, queueURL string) {
	t := e.t
	t.Helper()
	if out, err := exec.Command(consumerBin, "setup", "--app", e.app).CombinedOutput(); err != nil {
		t.Fatalf("consumer setup: %v\n%s", err, out)
	}
	for _, suffix := range []string{"-results", "-alarms", "-counters", "-deadletter", "-orders"} {
		table := e.app + suffix
		t.Cleanup(func() {
			e.ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		})
	}
	topic = testenv.TopicARN(e.app + "-alarms")
	return topic, testenv.SubscribeQueue(t, topic)
}

// putQuiet puts n clickstream hits with random keys; errors (the test
// ending) are ignored: it only keeps every shard's traffic going.
func (e *env) putQuiet(ctx context.Context, n int, tag string) {
	entries := make([]types.PutRecordsRequestEntry, n)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range entries {
		hit := fmt.Sprintf(`{"ip":"10.1.%d.%d","user_agent":"Mozilla/5.0 test","path":"/p/%s/%d","status":200,"bytes":%d,"timestamp":"%s","session_id":"s%d"}`,
			i%250, rand.IntN(250), tag, i, 100+i, now, i%97)
		entries[i] = types.PutRecordsRequestEntry{Data: []byte(hit), PartitionKey: aws.String(strconv.Itoa(rand.IntN(1 << 30)))}
	}
	_, _ = e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries})
}

// arrivals returns the Kinesis arrival times of the records res put.
func arrivals(t *testing.T, e *env, res *kinesis.PutRecordsOutput) []time.Time {
	t.Helper()
	want := map[string]bool{} // sequence numbers
	first := map[string]string{}
	for _, r := range res.Records {
		shard, seq := aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)
		want[seq] = true
		if f, ok := first[shard]; !ok || len(seq) < len(f) || (len(seq) == len(f) && seq < f) {
			first[shard] = seq
		}
	}
	var out []time.Time
	for shard, seq := range first {
		it, err := e.kc.GetShardIterator(context.Background(), &kinesis.GetShardIteratorInput{StreamName: aws.String(e.stream),
			ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seq)})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for found := 0; iter != nil; {
			got, err := e.kc.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got.Records {
				if want[aws.ToString(r.SequenceNumber)] {
					out = append(out, aws.ToTime(r.ApproximateArrivalTimestamp))
					found++
				}
			}
			if len(got.Records) == 0 || len(out) == len(want) {
				break
			}
			iter = got.NextShardIterator
		}
	}
	if len(out) != len(want) {
		t.Fatalf("read back %d of the %d orders put", len(out), len(want))
	}
	return out
}

// firstBreach returns the first of times (as SQL RANGE reads them: peers
// at one millisecond count together) whose window [t-width, t] holds at
// least threshold times, and how many it holds.
func firstBreach(times []time.Time, width time.Duration, threshold int64) (time.Time, int64) {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i, t := range times {
		if i+1 < len(times) && times[i+1].Equal(t) {
			continue // the last of its peers counts them all
		}
		var n int64
		for _, u := range times[:i+1] {
			if !u.Before(t.Add(-width)) {
				n++
			}
		}
		if n >= threshold {
			return t, n
		}
	}
	return time.Time{}, 0
}

// exampleConfig writes deploy/consumer.example.yaml with this stream, app,
// topic and local paths.
func (e *env) exampleConfig(t *testing.T, topic string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "consumer.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["stream"], doc["app"], doc["initial_position"] = e.stream, e.app, "TRIM_HORIZON"
	doc["deadletter"] = map[string]any{"sink": "file", "path": filepath.Join(e.dir, "deadletter.jsonl")}
	doc["metrics"] = map[string]any{"sink": "none"}
	doc["alarms"] = map[string]any{"topic_arn": topic}
	doc["log_format"] = "json"
	delete(doc, "ops_addr") // per worker, on the command line
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.dir, "example.yaml")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// scrapeUnits returns a worker's write units by table from /metrics.
func scrapeUnits(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		rest, ok := strings.CutPrefix(l, "shardwatch_dynamodb_units_total{")
		if !ok || !strings.Contains(rest, `kind="write"`) {
			continue
		}
		_, after, _ := strings.Cut(rest, `table="`)
		table, _, _ := strings.Cut(after, `"`)
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		out[table] += v
	}
	return out
}
