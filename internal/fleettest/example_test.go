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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
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
	if out, err := exec.Command(consumerBin, "setup", "--app", e.app).CombinedOutput(); err != nil {
		t.Fatalf("consumer setup: %v\n%s", err, out)
	}
	for _, suffix := range []string{"-results", "-alarms", "-counters", "-deadletter", "-orders"} {
		table := e.app + suffix
		t.Cleanup(func() {
			e.ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		})
	}
	topic := testenv.TopicARN(e.app + "-alarms")
	queue := testenv.SubscribeQueue(t, topic)
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
			ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":pk": &dbtypes.AttributeValueMemberS{Value: "orders#order-flood#frontier"}},
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

	var alarm struct {
		Orders int64  `json:"orders"`
		Shards int    `json:"shards"`
		Text   string `json:"text"`
	}
	latency := waitFor(t, 2*time.Minute, "the alarm on SQS", func() bool {
		out, err := testenv.SQS(t).ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			var structure map[string]string
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &structure); err != nil {
				t.Fatalf("message %q: %v", aws.ToString(m.Body), err)
			}
			// goaws delivers the whole MessageStructure document (see orders_test.go).
			if err := json.Unmarshal([]byte(structure["sqs"]), &alarm); err != nil {
				t.Fatalf("sqs entry %q: %v", structure["sqs"], err)
			}
			return true
		}
		return false
	})
	t.Logf("put to alarm on SQS: %s (polled every 100 ms); %s", latency, alarm.Text)
	if alarm.Orders != burst || alarm.Shards < 2 {
		t.Errorf("alarm counts %d orders on %d shards; want all %d, on several shards", alarm.Orders, alarm.Shards, burst)
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
