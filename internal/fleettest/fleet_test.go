package fleettest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwatch/shardwatch/internal/testenv"
)

var consumerBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	defaults := map[string]string{
		"AWS_ENDPOINT_URL_KINESIS":  "http://127.0.0.1:4567",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4569",
		"AWS_ENDPOINT_URL_SNS":      "http://127.0.0.1:4575",
		"AWS_ENDPOINT_URL_SQS":      "http://127.0.0.1:4575",
		"AWS_ACCESS_KEY_ID":         "local",
		"AWS_SECRET_ACCESS_KEY":     "local",
		"AWS_REGION":                "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
	for k, v := range defaults {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	dir, err := os.MkdirTemp("", "fleettest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	consumerBin = filepath.Join(dir, "consumer")
	build := exec.Command("go", "build", "-o", consumerBin, "github.com/shardwatch/shardwatch/cmd/consumer")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build consumer:", err)
		return 1
	}
	return m.Run()
}

type env struct {
	t      *testing.T
	kc     *kinesis.Client
	ddb    *dynamodb.Client
	stream string
	app    string
	dir    string
}

func newEnv(t *testing.T, shards int32) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("fleet tests start worker processes; skipped with -short")
	}
	ctx := context.Background()
	e := &env{t: t, kc: testenv.Kinesis(t), ddb: testenv.DynamoDB(t), dir: t.TempDir()}
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + strconv.Itoa(rand.IntN(1000))
	e.stream = "fleet-" + suffix
	e.app = "fleetapp-" + suffix
	if _, err := e.kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(e.stream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("create stream (is the local stack up? scripts/localstack up): %v", err)
	}
	t.Cleanup(func() {
		e.kc.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream)})
		e.ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(e.app)})
	})
	waitFor(t, 30*time.Second, "stream ACTIVE", func() bool {
		out, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(e.stream)})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
	return e
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// config writes a worker configuration; extra is appended YAML.
func (e *env) config(extra string) string {
	p := filepath.Join(e.dir, fmt.Sprintf("config-%d.yaml", rand.IntN(1e9)))
	body := fmt.Sprintf(`stream: %s
app: %s
initial_position: TRIM_HORIZON
format: auto
failover_time: 6s
poll_interval: 200ms
shutdown_timeout: 20s
log_format: json
log_level: info
deadletter:
  sink: file
  path: %s
metrics:
  sink: none
%s`, e.stream, e.app, filepath.Join(e.dir, "deadletter.jsonl"), extra)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

type worker struct {
	id    string
	cmd   *exec.Cmd
	audit string
	ops   string
	mu    sync.Mutex
	log   bytes.Buffer
	done  chan struct{}
	err   error
}

func (w *worker) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.Write(p)
}

func (w *worker) logs() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (e *env) start(cfgPath, id string) *worker {
	e.t.Helper()
	w := &worker{id: id, audit: filepath.Join(e.dir, "audit-"+id+".log"), ops: freeAddr(e.t), done: make(chan struct{})}
	w.cmd = exec.Command(consumerBin, "run", "--config", cfgPath, "--worker-id", id, "--audit-log", w.audit, "--ops-addr", w.ops)
	w.cmd.Stdout, w.cmd.Stderr = w, w
	if err := w.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	e.t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Signal(syscall.SIGCONT)
			w.cmd.Process.Kill()
			<-w.done
		}
		if e.t.Failed() {
			e.t.Logf("worker %s log (tail):\n%s", id, tail(w.logs(), 6000))
		}
	})
	return w
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (w *worker) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

type pos struct {
	shard, seq string
	sub        int64
}

// put writes n clickstream hits and returns the position of each.
func (e *env) put(n int, tag string) map[pos]bool {
	e.t.Helper()
	ctx := context.Background()
	out := make(map[pos]bool, n)
	var pending []types.PutRecordsRequestEntry
	for i := 0; i < n; i++ {
		hit := fmt.Sprintf(`{"ip":"10.%d.%d.%d","user_agent":"Mozilla/5.0 test","path":"/p/%s/%d","status":200,"bytes":%d,"timestamp":"%s","session_id":"s%d"}`,
			i%250, (i/250)%250, i%7, tag, i, 100+i%900, time.Now().UTC().Format(time.RFC3339Nano), i%97)
		pending = append(pending, types.PutRecordsRequestEntry{Data: []byte(hit), PartitionKey: aws.String(fmt.Sprintf("k%d", i))})
	}
	for len(pending) > 0 {
		batch := pending[:min(500, len(pending))]
		pending = pending[len(batch):]
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt > 20 {
				e.t.Fatal("PutRecords kept failing")
			}
			res, err := e.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: batch})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			var retry []types.PutRecordsRequestEntry
			for j, r := range res.Records {
				if r.ErrorCode != nil {
					retry = append(retry, batch[j])
					continue
				}
				out[pos{aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber), 0}] = true
			}
			batch = retry
		}
	}
	return out
}

// processed reads the audit logs: how often each position was processed.
func processed(t *testing.T, ws ...*worker) map[pos]int {
	t.Helper()
	out := map[pos]int{}
	for _, w := range ws {
		f, err := os.Open(w.audit)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 4 {
				continue // a line cut by SIGKILL
			}
			sub, _ := strconv.ParseInt(fs[2], 10, 64)
			out[pos{fs[0], fs[1], sub}]++
		}
		f.Close()
	}
	return out
}

func coverage(want map[pos]bool, got map[pos]int) (missing, dups int) {
	for p := range want {
		switch c := got[p]; {
		case c == 0:
			missing++
		case c > 1:
			dups += c - 1
		}
	}
	return
}

type lease struct {
	owner, checkpoint string
	counter           int64
}

func (e *env) leases() map[string]lease {
	e.t.Helper()
	out := map[string]lease{}
	res, err := e.ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.app), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return out
	}
	for _, it := range res.Items {
		var l lease
		if v, ok := it["AssignedTo"].(*ddbtypes.AttributeValueMemberS); ok {
			l.owner = v.Value
		}
		if v, ok := it["Checkpoint"].(*ddbtypes.AttributeValueMemberS); ok {
			l.checkpoint = v.Value
		}
		if v, ok := it["LeaseCounter"].(*ddbtypes.AttributeValueMemberN); ok {
			l.counter, _ = strconv.ParseInt(v.Value, 10, 64)
		}
		out[it["ShardID"].(*ddbtypes.AttributeValueMemberS).Value] = l
	}
	return out
}

func owned(ls map[string]lease, owner string) []string {
	var out []string
	for id, l := range ls {
		if l.owner == owner && l.checkpoint != "SHARD_END" {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func (e *env) waitProcessed(want map[pos]bool, d time.Duration, ws ...*worker) map[pos]int {
	e.t.Helper()
	var got map[pos]int
	waitFor(e.t, d, fmt.Sprintf("%d records processed", len(want)), func() bool {
		got = processed(e.t, ws...)
		missing, _ := coverage(want, got)
		return missing == 0
	})
	return got
}

func jsonLines(t *testing.T, path string) []map[string]any {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("dead-letter line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}
