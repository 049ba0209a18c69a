package fleettest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/testenv"
)

var (
	producerOnce sync.Once
	producerBin  string
	producerErr  error
)

// producerBinary builds cmd/producer once per test binary.
func producerBinary(t *testing.T) string {
	t.Helper()
	producerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fleettest-producer")
		if err != nil {
			producerErr = err
			return
		}
		producerBin = filepath.Join(dir, "producer")
		out, err := exec.Command("go", "build", "-o", producerBin, "github.com/shardwatch/shardwatch/cmd/producer").CombinedOutput()
		if err != nil {
			producerErr = fmt.Errorf("build producer: %v\n%s", err, out)
		}
	})
	if producerErr != nil {
		t.Fatal(producerErr)
	}
	return producerBin
}

// flood is one alarm: its time (to the millisecond), count and trigger
// count.
type flood struct {
	At      time.Time
	Orders  int64
	Trigger int64
}

func (f flood) String() string {
	return fmt.Sprintf("%s %d orders %d triggers", f.At.UTC().Format("2006-01-02T15:04:05.000"), f.Orders, f.Trigger)
}

// offlineFloods is the order-flood rule computed from the CSV alone, as
// the KDA SQL reads: for each distinct order time t (InvoiceDate), the
// order lines (not cancellations) with times in [t-15s, t]; a breach at
// >= 30; an alarm at a breach at least 60 s after the previous alarm,
// with the breaches of [t-60s, t] as its trigger count.
func offlineFloods(t *testing.T, path string) []flood {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var times []time.Time
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		line := sc.Text()
		if first || line == "" {
			continue
		}
		if strings.HasPrefix(line, "C") {
			continue // a cancellation
		}
		// InvoiceDate is the only field shaped "YYYY-MM-DD HH:MM:SS".
		var at time.Time
		for _, field := range strings.Split(line, ",") {
			if x, err := time.Parse("2006-01-02 15:04:05", field); err == nil {
				at = x
			}
		}
		if at.IsZero() {
			t.Fatalf("no InvoiceDate in %q", line)
		}
		times = append(times, at)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	count := func(lo, hi time.Time) int64 { // [lo, hi]
		a := sort.Search(len(times), func(k int) bool { return !times[k].Before(lo) })
		b := sort.Search(len(times), func(k int) bool { return times[k].After(hi) })
		return int64(b - a)
	}
	var breaches []time.Time
	var out []flood
	for i, at := range times {
		if i > 0 && times[i-1].Equal(at) {
			continue
		}
		n := count(at.Add(-15*time.Second), at)
		if n < 30 {
			continue
		}
		breaches = append(breaches, at)
		if len(out) > 0 && at.Sub(out[len(out)-1].At) < time.Minute {
			continue
		}
		var trig int64
		for _, b := range breaches {
			if !b.Before(at.Add(-time.Minute)) {
				trig++
			}
		}
		out = append(out, flood{At: at, Orders: n, Trigger: trig})
	}
	return out
}

// ordersHead writes the header and first n lines of the December orders.
func ordersHead(t *testing.T, n int) string {
	t.Helper()
	b, err := os.ReadFile(testenv.SharedData(t, "orders/online-retail-2010-12.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	p := filepath.Join(t.TempDir(), "orders.csv")
	if err := os.WriteFile(p, []byte(strings.Join(lines[:min(n+1, len(lines))], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOrderFloodAgentJSON is the order-flood acceptance test through the
// real binaries: the December 2010 orders (the first 6,000 lines, Dec 1-2)
// replayed by `producer replay` as Kinesis Agent CSVTOJSON records and as
// CSV, partition key random, into a 4-shard stream each, consumed by two
// workers with the default orderflood (30 order lines in a 15 s range,
// sliding minute). Each raises exactly the alarms of the offline count,
// with its counts and trigger counts, publishes each once with the
// short text, and `consumer query alarms --by day` totals them.
// Windows are on event time (InvoiceDate), so the replay speed does not
// change them: the test replays at full speed.
func TestOrderFloodAgentJSON(t *testing.T) {
	csv := ordersHead(t, 6000)
	want := offlineFloods(t, csv)
	if len(want) < 5 {
		t.Fatalf("the offline count raises %d alarms; the comparison would prove little", len(want))
	}
	for _, format := range []string{"orders-agent-json", "orders-csv"} {
		t.Run(format, func(t *testing.T) { replayOrders(t, csv, format, want) })
	}
	t.Logf("December 1-2 (6,000 lines): %d alarms, first %v, last %v", len(want), want[0], want[len(want)-1])
}

func replayOrders(t *testing.T, csv, format string, want []flood) {
	e := newEnv(t, 4)
	topic, queue := e.setup()
	// One PutRecords in flight keeps each shard's records in event-time
	// order at full speed (parallel puts reorder them by hours of event
	// time, beyond any grace: those records would count as late).
	cfg := e.config(fmt.Sprintf("alarms:\n  topic_arn: %s\nprocessors:\n  orderflood: {grace: 1h, partial_ttl: 3h}\n", topic))
	w1, w2 := e.start(cfg, "w1"), e.start(cfg, "w2")

	rep := exec.Command(producerBinary(t), "replay", "--stream", e.stream, "--format", format, "--partition-key", "random", "--speed", "max", "--concurrency", "1", csv)
	if out, err := rep.CombinedOutput(); err != nil {
		t.Fatalf("producer replay: %v\n%s", err, out)
	}

	var got []flood
	waitFor(t, 3*time.Minute, fmt.Sprintf("%d published alarms", len(want)), func() bool {
		if w1.exited() || w2.exited() {
			t.Fatal("a worker exited")
		}
		got = alarmsOf(t, e.ddb, e.app+"-alarms")
		return len(got) >= len(want)
	})
	if d := diffFloods(want, got); d != "" {
		t.Errorf("%s: alarms differ from the offline count (-offline +got):\n%s", format, d)
	}

	// One SNS message per alarm, JSON for the SQS subscriber, and the
	// short text for SMS and e-mail in the same publish.
	msgs := map[string]int{}
	waitFor(t, time.Minute, "one message per alarm", func() bool {
		for _, structure := range receiveAlarms(t, queue) {
			var a struct {
				Period  string `json:"period"`
				Text    string `json:"text"`
				Trigger int64  `json:"trigger_count"`
			}
			if err := json.Unmarshal([]byte(structure["sqs"]), &a); err != nil || a.Period == "" {
				t.Fatalf("sqs entry %q: %v", structure["sqs"], err)
			}
			if sms := structure["sms"]; sms != a.Text || len(sms) > 140 || !strings.Contains(sms, "order lines in 15 s (threshold 30)") ||
				structure["email"] != sms {
				t.Errorf("sms %q, email %q, alarm text %q", sms, structure["email"], a.Text)
			}
			msgs[a.Period]++
		}
		return len(msgs) >= len(want)
	})
	for p, n := range msgs {
		if n != 1 {
			t.Errorf("alarm %s: %d messages, want 1", p, n)
		}
	}

	// The history per day, through the CLI.
	// The JSON is on stdout; stderr may carry the SDK's warnings.
	var stderr strings.Builder
	query := exec.Command(consumerBin, "query", "alarms", "--app", e.app, "--by", "day", "--json")
	query.Stderr = &stderr
	out, err := query.Output()
	if err != nil {
		t.Fatalf("consumer query alarms: %v\n%s%s", err, out, stderr.String())
	}
	type total struct {
		Bucket    string    `json:"bucket"`
		Alarms    int       `json:"alarms"`
		MaxOrders int64     `json:"max_orders"`
		First     time.Time `json:"first"`
		Last      time.Time `json:"last"`
	}
	var days []total
	for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		var d total
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("query output %q: %v", l, err)
		}
		days = append(days, d)
	}
	var wantDays []total
	for _, f := range want {
		day := f.At.Format("2006-01-02")
		if len(wantDays) == 0 || wantDays[len(wantDays)-1].Bucket != day {
			wantDays = append(wantDays, total{Bucket: day, First: f.At})
		}
		d := &wantDays[len(wantDays)-1]
		d.Alarms++
		d.MaxOrders = max(d.MaxOrders, f.Orders)
		d.Last = f.At
	}
	if fmt.Sprint(days) != fmt.Sprint(wantDays) {
		t.Errorf("query alarms --by day = %v; offline %v", days, wantDays)
	}
}

// alarmsOf returns the published alarms of the history table, oldest
// first.
func alarmsOf(t *testing.T, ddb *dynamodb.Client, table string) []flood {
	t.Helper()
	out, err := ddb.Query(t.Context(), &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("alarm = :a"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":a": &ddbtypes.AttributeValueMemberS{Value: "order-flood"}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []flood
	for _, it := range out.Items {
		if st, _ := it["state"].(*ddbtypes.AttributeValueMemberS); st == nil || st.Value != "published" {
			continue
		}
		body, _ := it["body"].(*ddbtypes.AttributeValueMemberS)
		var a struct {
			Time    time.Time `json:"time"`
			Orders  int64     `json:"orders"`
			Trigger int64     `json:"trigger_count"`
		}
		if body == nil || json.Unmarshal([]byte(body.Value), &a) != nil {
			t.Fatalf("alarm item without a readable body: %v", it)
		}
		got = append(got, flood{At: a.Time, Orders: a.Orders, Trigger: a.Trigger})
	}
	slices.SortFunc(got, func(a, b flood) int { return a.At.Compare(b.At) })
	return got
}

// diffFloods compares alarms as text (-offline +got).
func diffFloods(want, got []flood) string {
	str := func(fs []flood) []string {
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = f.String()
		}
		return out
	}
	return cmp.Diff(str(want), str(got))
}

// receiveAlarms receives the alarm messages waiting on queue and deletes
// them: each one's MessageStructure document (goaws delivers the whole
// document to a raw SQS subscriber; SNS would deliver its "sqs" entry).
func receiveAlarms(t *testing.T, queue string) []map[string]string {
	t.Helper()
	out, err := testenv.SQS(t).ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]string
	for _, m := range out.Messages {
		var structure map[string]string
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &structure); err != nil {
			t.Fatalf("message %q: %v", aws.ToString(m.Body), err)
		}
		docs = append(docs, structure)
		testenv.SQS(t).DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queue), ReceiptHandle: m.ReceiptHandle})
	}
	return docs
}
