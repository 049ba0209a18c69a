package fleettest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// failover is failover_time in env.config (shard_sync_interval is the
// default).
const failover = 6 * time.Second

// a. 4 shards, 2 workers, 20,000 records: every record processed, leases
// split 2/2.
func TestTwoWorkersShareFourShards(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	cfg := e.config("")
	w1, w2 := e.start(cfg, "w1"), e.start(cfg, "w2")
	want := e.put(20000, "a")
	got := e.waitProcessed(want, 90*time.Second, w1, w2)
	missing, dups := coverage(want, got)
	t.Logf("20,000 records: missing %d, duplicates %d", missing, dups)
	var l1, l2 []string
	waitFor(t, 20*time.Second, "leases split 2/2", func() bool {
		ls := e.leases()
		l1, l2 = owned(ls, "w1"), owned(ls, "w2")
		return len(l1) == 2 && len(l2) == 2
	})
	t.Logf("leases: w1 %v, w2 %v", l1, l2)
	m := metricsText(t, w1)
	for _, want := range []string{"shardwatch_leases_held 2", "shardwatch_records_in_total{shard_id=", "shardwatch_millis_behind_latest{shard_id=", "shardwatch_checkpoint_age_seconds{shard_id=", "shardwatch_checkpoints_total{"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code := httpStatus(t, "http://"+w1.ops+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d; want 200", code)
	}
	if dups != 0 {
		t.Errorf("%d duplicates without any fault", dups)
	}
}

// d. Zombie: a worker stopped past its lease expiry loses its shards; when
// it resumes, its checkpoint writes fail and the new owner's are intact.
func TestZombieCannotCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	cfg := e.config("")
	w1, w2 := e.start(cfg, "w1"), e.start(cfg, "w2")
	want := e.put(2000, "d1")
	e.waitProcessed(want, 60*time.Second, w1, w2)
	waitFor(t, 20*time.Second, "one lease each", func() bool {
		ls := e.leases()
		return len(owned(ls, "w1")) == 1 && len(owned(ls, "w2")) == 1
	})
	if err := w2.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 40*time.Second, "w1 takes the stopped worker's shard", func() bool {
		return len(owned(e.leases(), "w1")) == 2
	})
	t.Logf("zombie: shard taken over %s after SIGSTOP", took)
	for p := range e.put(2000, "d2") {
		want[p] = true
	}
	e.waitProcessed(want, 60*time.Second, w1, w2)
	before := e.leases()
	if err := w2.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the zombie notices its lease is lost", func() bool {
		return strings.Contains(w2.logs(), "lease lost") || strings.Contains(w2.logs(), "stopping shard without checkpoint")
	})
	for p := range e.put(1000, "d3") {
		want[p] = true
	}
	e.waitProcessed(want, 60*time.Second, w1, w2)
	after := e.leases()
	for id, b := range before {
		a := after[id]
		if cmpSeq(a.checkpoint, b.checkpoint) < 0 {
			t.Errorf("shard %s checkpoint moved backwards: %s -> %s", id, b.checkpoint, a.checkpoint)
		}
	}
	// The resumed worker may take a lease again (a fresh tenure, to
	// balance the fleet), but its old tenure must have been fenced out.
	if l := w2.logs(); !strings.Contains(l, "expired locally") && !strings.Contains(l, "fenced out") {
		t.Errorf("the zombie's old tenure was not fenced (no 'expired locally' or 'fenced out' in its log)")
	}
	if w2.exited() {
		t.Errorf("zombie worker exited (%v); it should keep running and may take new leases", w2.err)
	}
}

func cmpSeq(a, b string) int {
	x, okx := new(big.Int).SetString(a, 10)
	y, oky := new(big.Int).SetString(b, 10)
	if !okx || !oky {
		return strings.Compare(a, b)
	}
	return x.Cmp(y)
}

// e. Two workers started at the same instant on a new application both run
// (the engine's own CreateTable race makes one exit).
func TestSimultaneousStartOnNewApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	cfg := e.config("")
	w1, w2 := e.start(cfg, "w1"), e.start(cfg, "w2")
	want := e.put(1000, "e")
	e.waitProcessed(want, 60*time.Second, w1, w2)
	waitFor(t, 20*time.Second, "both workers hold leases", func() bool {
		ls := e.leases()
		return len(owned(ls, "w1")) >= 1 && len(owned(ls, "w2")) >= 1
	})
	if w1.exited() || w2.exited() {
		t.Fatalf("a worker exited: w1 %v, w2 %v", w1.err, w2.err)
	}
}

// f. SplitShard mid-stream: the children are processed only after the
// parent reached SHARD_END; nothing is lost.
func TestSplitShardParentFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	cfg := e.config("")
	w1 := e.start(cfg, "w1")
	want := e.put(1500, "f1")
	e.waitProcessed(want, 60*time.Second, w1)
	ctx := context.Background()
	shards, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	parent := aws.ToString(shards.Shards[0].ShardId)
	// Records written right before the split stay in the parent; make sure
	// some of them are not processed yet when it closes.
	for p := range e.put(1500, "f2") {
		want[p] = true
	}
	mid := new(big.Int).Lsh(big.NewInt(1), 127).String()
	if _, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(e.stream), ShardToSplit: aws.String(parent), NewStartingHashKey: aws.String(mid)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "stream ACTIVE after split", func() bool {
		out, err := e.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(e.stream)})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
	for p := range e.put(3000, "f3") {
		want[p] = true
	}
	got := e.waitProcessed(want, 90*time.Second, w1)
	missing, dups := coverage(want, got)
	t.Logf("split: missing %d, duplicates %d", missing, dups)
	if l := e.leases()[parent]; l.checkpoint != "SHARD_END" {
		t.Errorf("parent checkpoint %q; want SHARD_END", l.checkpoint)
	}
	// In the one worker's audit log no child record may come before the
	// parent's last record.
	f, err := os.Open(w1.audit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	lastParent, firstChild, line := -1, -1, 0
	for sc.Scan() {
		shard := strings.Fields(sc.Text())[0]
		if shard == parent {
			lastParent = line
		} else if firstChild < 0 {
			firstChild = line
		}
		line++
	}
	if firstChild < 0 || firstChild < lastParent {
		t.Errorf("first child record at line %d, last parent record at line %d; children must start after the parent ended", firstChild, lastParent)
	}
}

// g. The KPL-aggregated records are processed as exactly 600 user records.
func TestKPLAggregatesProcessedAsUserRecords(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "..", "shared", "data", "kpl", "aws-kinesis-agg_apache_logs_vectors.json")
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skip("../shared/data is not present")
	}
	if err != nil {
		t.Fatal(err)
	}
	var vec struct {
		Vectors []struct {
			Aggregated []struct {
				PartitionKey    string  `json:"partitionKey"`
				ExplicitHashKey *string `json:"explicitHashKey"`
				DataB64         string  `json:"data_b64"`
			} `json:"aggregated_records"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(data, &vec); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, 2)
	w1 := e.start(e.config(""), "w1")
	want := map[pos]bool{}
	for _, v := range vec.Vectors {
		for _, a := range v.Aggregated {
			raw, err := base64.StdEncoding.DecodeString(a.DataB64)
			if err != nil {
				t.Fatal(err)
			}
			in := &kinesis.PutRecordInput{StreamName: aws.String(e.stream), Data: raw, PartitionKey: aws.String(a.PartitionKey)}
			if a.ExplicitHashKey != nil && *a.ExplicitHashKey != "None" {
				in.ExplicitHashKey = a.ExplicitHashKey
			}
			out, err := e.kc.PutRecord(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			for sub := int64(0); sub < 50; sub++ {
				want[pos{aws.ToString(out.ShardId), aws.ToString(out.SequenceNumber), sub}] = true
			}
		}
	}
	if len(want) != 600 {
		t.Fatalf("expected 600 user records from the vectors, built %d", len(want))
	}
	got := e.waitProcessed(want, 60*time.Second, w1)
	if len(got) != 600 {
		t.Errorf("processed %d distinct positions; want exactly 600", len(got))
	}
	if dl := jsonLines(t, filepath.Join(e.dir, "deadletter.jsonl")); len(dl) != 0 {
		t.Errorf("%d user records were dead-lettered; want 0 (first: %v)", len(dl), dl[0])
	}
}

// h. A config with an unknown key, and one with an invalid value, each fail
// at start with the field named.
func TestBadConfigFailsAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct{ name, body, field string }{
		{"unknown key", "stream: s\napp: a\nshard_sync: 2s\n", "shard_sync"},
		{"invalid value", "stream: s\napp: a\ninitial_position: EARLIEST\n", "initial_position"},
		{"unknown processor", "stream: s\napp: a\nprocessors:\n  nosuch: {}\n", "nosuch"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, consumerBin, "run", "--config", p).CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("%s: consumer started; want a start-up error", tc.name)
			continue
		}
		if !strings.Contains(string(out), tc.field) {
			t.Errorf("%s: error output %q does not name %q", tc.name, out, tc.field)
		}
	}
}

// The engine's start-up errors are retried, not fatal: a worker whose
// DynamoDB is unreachable stays up (alive, not ready) and keeps trying.
func TestStartErrorsAreRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	cfg := e.config("")
	dead := freeAddr(t) // nothing listens here
	w := &worker{id: "w1", audit: filepath.Join(e.dir, "audit-w1.log"), ops: freeAddr(t), done: make(chan struct{})}
	w.cmd = exec.Command(consumerBin, "run", "--config", cfg, "--worker-id", "w1", "--ops-addr", w.ops)
	w.cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL_DYNAMODB=http://"+dead, "AWS_MAX_ATTEMPTS=1")
	w.cmd.Stdout, w.cmd.Stderr = w, w
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	defer func() { w.cmd.Process.Kill(); <-w.done }()
	waitFor(t, 30*time.Second, "two failed start attempts", func() bool {
		return strings.Count(w.logs(), "engine start failed; retrying") >= 2
	})
	if w.exited() {
		t.Fatalf("worker exited: %v", w.err)
	}
	if code := httpStatus(t, "http://"+w.ops+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d; want 200 while retrying", code)
	}
	if code := httpStatus(t, "http://"+w.ops+"/readyz"); code != 503 {
		t.Errorf("/readyz = %d; want 503 before the engine starts", code)
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
		if w.err != nil {
			t.Errorf("exit after SIGTERM while retrying: %v", w.err)
		}
	case <-time.After(10 * time.Second):
		t.Error("worker ignored SIGTERM while retrying start-up")
	}
}

func httpGet(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func metricsText(t *testing.T, w *worker) string {
	t.Helper()
	resp, err := http.Get("http://" + w.ops + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
