package baseline_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardwatch/shardwatch/internal/bench/baseline"
	"github.com/shardwatch/shardwatch/internal/engine"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

func valid() baseline.Config {
	return baseline.Config{App: "a", Stream: "s", Region: "us-east-1", WorkerID: "w", InitialPosition: "TRIM_HORIZON",
		ShardSync: time.Second, FailoverTime: 4 * time.Second, PollInterval: 100 * time.Millisecond, MaxRecords: 100}
}

func TestConfigValidate(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mut := range map[string]func(*baseline.Config){
		"no app":           func(c *baseline.Config) { c.App = "" },
		"AT_TIMESTAMP":     func(c *baseline.Config) { c.InitialPosition = "AT_TIMESTAMP" },
		"no poll interval": func(c *baseline.Config) { c.PollInterval = 0 },
		"max records":      func(c *baseline.Config) { c.MaxRecords = 10001 },
	} {
		c := valid()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

// TestCountsEveryRecord runs the baseline on the local stack: it leases
// the shard with the library's own checkpointer, counts every record once,
// audits each position and checkpoints.
func TestCountsEveryRecord(t *testing.T) {
	kc := testenv.Kinesis(t)
	ddb := testenv.DynamoDB(t)
	stream, app := testenv.Name(t, "base"), testenv.Name(t, "base-app")
	testenv.CreateStream(t, stream, 1)
	testenv.CreateTable(t, app, "ShardID", "") // the library's lease table
	const n = 20
	in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
	for i := range n {
		in.Records = append(in.Records, kintypes.PutRecordsRequestEntry{PartitionKey: aws.String(strconv.Itoa(i)), Data: []byte("r" + strconv.Itoa(i))})
	}
	if out, err := kc.PutRecords(t.Context(), in); err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("put: %v", err)
	}
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	audit, err := engine.OpenAuditLog(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Close()
	cfg := valid()
	cfg.App, cfg.Stream, cfg.ShardSync, cfg.FailoverTime = app, stream, 500*time.Millisecond, 2*time.Second
	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		c   *baseline.Counts
		err error
	}
	done := make(chan result, 1)
	var counts *baseline.Counts
	go func() {
		c, err := baseline.Run(ctx, cfg, baseline.Deps{Kinesis: kc, DynamoDB: ddb, Audit: audit})
		done <- result{c, err}
	}()
	// Poll the audit log (the counts live in Run until it returns).
	deadline := time.Now().Add(60 * time.Second)
	for lines(t, auditPath) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling a condition, with a deadline
	}
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	counts = r.c
	if got := lines(t, auditPath); got != n || counts.Records.Load() != n {
		t.Fatalf("audited %d, counted %d; want %d each", got, counts.Records.Load(), n)
	}
	if counts.Checkpoints.Load() == 0 || counts.CheckpointErrors.Load() != 0 {
		t.Errorf("checkpoints %d, errors %d", counts.Checkpoints.Load(), counts.CheckpointErrors.Load())
	}
}

func lines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		n++
	}
	return n
}
