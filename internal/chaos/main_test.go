package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwatch/shardwatch/internal/faultproxy"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

var consumerBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "chaostest")
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

func integration(t *testing.T) {
	t.Helper()
	if testing.Short() || os.Getenv(testenv.EnvSkipIntegration) == "1" {
		t.Skip("starts worker processes on the local stack; skipped with -short / " + testenv.EnvSkipIntegration)
	}
}

// repoRoot walks up to go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// fleetOn is a small fleet on the shared stack (or through proxies in
// front of it).
type fleetOn struct {
	t      *testing.T
	stream string
	app    string
	dir    string
	kc     *kinesis.Client
	env    []string
	fleet  *Fleet
}

func newFleetOn(t *testing.T, shards int32, kinesisURL, dynamoURL string, extra string) *fleetOn {
	t.Helper()
	integration(t)
	f := &fleetOn{t: t, dir: t.TempDir(), kc: testenv.Kinesis(t)}
	f.stream = testenv.Name(t, "chaos")
	f.app = f.stream
	testenv.CreateStream(t, f.stream, shards)
	t.Cleanup(func() {
		for _, tbl := range []string{f.app, f.app + "-results", f.app + "-counters", f.app + "-alarms", f.app + "-deadletter"} {
			testenv.DeleteTable(t, tbl)
		}
		testenv.DeleteTopic(t, testenv.TopicARN(f.app+"-alarms"))
	})
	setup := exec.CommandContext(t.Context(), consumerBin, "setup", "--app", f.app, "--stream", f.stream, "--shards", "0")
	setup.Env = testenv.Environ(t)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("consumer setup: %v\n%s", err, out)
	}
	f.env = append(testenv.Environ(t), "AWS_ENDPOINT_URL_KINESIS="+kinesisURL, "AWS_ENDPOINT_URL_DYNAMODB="+dynamoURL)
	cfg := filepath.Join(f.dir, "consumer.yaml")
	body := fmt.Sprintf(`stream: %s
app: %s
initial_position: TRIM_HORIZON
format: auto
failover_time: 6s
poll_interval: 200ms
shutdown_timeout: 15s
log_format: json
log_level: info
deadletter:
  sink: file
  path: %s
metrics:
  sink: none
%s`, f.stream, f.app, filepath.Join(f.dir, "deadletter.jsonl"), extra)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	f.fleet = &Fleet{Bin: consumerBin, Config: cfg, Dir: f.dir, Env: f.env}
	t.Cleanup(func() {
		f.fleet.StopAll(20 * time.Second)
		if t.Failed() {
			for _, p := range f.fleet.Procs() {
				b, _ := os.ReadFile(p.LogPath)
				t.Logf("worker %s log (tail):\n%s", p.ID, tailString(string(b), 4000))
			}
		}
	})
	return f
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// put writes records and returns their positions.
func (f *fleetOn) put(data [][]byte) []Pos {
	f.t.Helper()
	var out []Pos
	for len(data) > 0 {
		n := min(len(data), 100)
		var req []ktypes.PutRecordsRequestEntry
		for i, d := range data[:n] {
			req = append(req, ktypes.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String(fmt.Sprintf("k%d", i))})
		}
		res, err := f.kc.PutRecords(f.t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(f.stream), Records: req})
		if err != nil {
			f.t.Fatal(err)
		}
		for i, r := range res.Records {
			if r.ErrorCode != nil {
				f.t.Fatalf("put record %d: %s", i, aws.ToString(r.ErrorMessage))
			}
			out = append(out, Pos{aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber), 0})
		}
		data = data[n:]
	}
	return out
}

// waitProcessed waits until every position is in an audit log.
func (f *fleetOn) waitProcessed(want []Pos, d time.Duration) map[Pos]int {
	f.t.Helper()
	a := newAuditTail()
	deadline := time.Now().Add(d)
	for {
		_ = a.poll(f.fleet.Procs())
		got := a.snapshot()
		missing := 0
		for _, p := range want {
			if got[p] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%d of %d records not processed after %s", missing, len(want), d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (f *fleetOn) deadLetters() []map[string]any {
	b, err := os.ReadFile(filepath.Join(f.dir, "deadletter.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			f.t.Fatalf("dead-letter line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func (f *fleetOn) logs() string {
	var b strings.Builder
	for _, p := range f.fleet.Procs() {
		data, _ := os.ReadFile(p.LogPath)
		b.Write(data)
	}
	return b.String()
}

// proxy serves a fault proxy in front of target until the test ends.
func proxy(t *testing.T, target string, seed uint64, rules []faultproxy.Rule) (*faultproxy.Proxy, string) {
	t.Helper()
	p, err := faultproxy.New(faultproxy.Config{Target: target, Rules: rules, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy: %v", err)
		}
	})
	return p, "http://" + ln.Addr().String()
}

func metricsText(t *testing.T, p *Proc) string {
	t.Helper()
	resp, err := http.Get("http://" + p.OpsAddr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }
