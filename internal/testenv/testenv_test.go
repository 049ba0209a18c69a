package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"ckpt", 32, "ckpt"},
		{"TestLease/two_workers", 32, "testlease-two-workers"},
		{"--A..B--", 32, "a-b"},
		{"", 32, ""},
		{"///", 32, ""},
		{"abcdefghij-klmnop", 11, "abcdefghij"},
		{"Ünïcode Name", 32, "n-code-name"},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, sanitize(tc.in, tc.max)); diff != "" {
			t.Errorf("sanitize(%q, %d) mismatch (-want +got):\n%s", tc.in, tc.max, diff)
		}
	}
}

func TestName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	seen := map[string]bool{}
	for range 100 {
		n := Name(t, "Stream_X")
		if !valid.MatchString(n) {
			t.Fatalf("Name = %q, not [a-z0-9-]", n)
		}
		if !strings.HasPrefix(n, "stream-x-testname-") {
			t.Fatalf("Name = %q, want prefix stream-x-testname-", n)
		}
		if len(n) > 80 {
			t.Fatalf("Name = %q is %d bytes, want <= 80", n, len(n))
		}
		if seen[n] {
			t.Fatalf("Name returned %q twice", n)
		}
		seen[n] = true
	}
}

func TestLocalEndpoints(t *testing.T) {
	unset := map[string]string{
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_KINESIS": "", "AWS_ENDPOINT_URL_DYNAMODB": "",
		"AWS_ENDPOINT_URL_SNS": "", "AWS_ENDPOINT_URL_SQS": "",
		EnvKinesisPort: "", EnvDynamoDBPort: "", EnvSNSPort: "",
	}
	tests := []struct {
		name string
		env  map[string]string
		want Endpoints
	}{
		{
			name: "defaults",
			want: Endpoints{"http://127.0.0.1:4567", "http://127.0.0.1:4569", "http://127.0.0.1:4575", "http://127.0.0.1:4575"},
		},
		{
			name: "ports",
			env:  map[string]string{EnvKinesisPort: "1", EnvDynamoDBPort: "2", EnvSNSPort: "3"},
			want: Endpoints{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3", "http://127.0.0.1:3"},
		},
		{
			name: "service URLs win over ports",
			env: map[string]string{
				EnvKinesisPort: "1", "AWS_ENDPOINT_URL_KINESIS": "http://k:9", "AWS_ENDPOINT_URL_SQS": "http://q:9",
			},
			want: Endpoints{"http://k:9", "http://127.0.0.1:4569", "http://127.0.0.1:4575", "http://q:9"},
		},
		{
			name: "global URL",
			env:  map[string]string{"AWS_ENDPOINT_URL": "http://all:1", "AWS_ENDPOINT_URL_SNS": "http://s:2"},
			want: Endpoints{"http://all:1", "http://all:1", "http://s:2", "http://all:1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range unset {
				t.Setenv(k, v)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if diff := cmp.Diff(tc.want, LocalEndpoints()); diff != "" {
				t.Errorf("LocalEndpoints mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// recorder captures Fatal/Skip instead of ending the real test.
type recorder struct {
	testing.TB
	mu      sync.Mutex
	fatal   string
	skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprint(args...)
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any) {
	r.mu.Lock()
	r.skipped = fmt.Sprint(args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func runRecorded(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func closedPortURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func TestRequireReachableUnreachable(t *testing.T) {
	ep := closedPortURL(t)

	t.Setenv(EnvSkipIntegration, "")
	r := runRecorded(t, func(tb testing.TB) { requireReachable(tb, ep) })
	if !strings.Contains(r.fatal, "local AWS stack not reachable at "+ep) || !strings.Contains(r.fatal, "run scripts/localstack up") {
		t.Errorf("Fatal message = %q, want the endpoint and the fix", r.fatal)
	}
	if r.skipped != "" {
		t.Errorf("skipped without %s=1: %q", EnvSkipIntegration, r.skipped)
	}

	t.Setenv(EnvSkipIntegration, "1")
	r = runRecorded(t, func(tb testing.TB) { requireReachable(tb, ep) })
	if r.fatal != "" || !strings.Contains(r.skipped, "not reachable") {
		t.Errorf("with %s=1: fatal=%q skipped=%q, want a skip", EnvSkipIntegration, r.fatal, r.skipped)
	}
}

func TestRequireReachableCachesProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "http://" + l.Addr().String()
	r := runRecorded(t, func(tb testing.TB) { requireReachable(tb, ep) })
	if r.fatal != "" {
		t.Fatalf("listening endpoint reported unreachable: %s", r.fatal)
	}
	// Once probed, the answer holds for the process: no second dial.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r = runRecorded(t, func(tb testing.TB) { requireReachable(tb, ep) })
	if r.fatal != "" {
		t.Fatalf("second check dialled again: %s", r.fatal)
	}
}

func TestRepoRootAndSharedData(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("RepoRoot = %s without go.mod: %v", root, err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv", "doc.go")); err != nil {
		t.Fatalf("RepoRoot = %s is not the shardwatch root: %v", root, err)
	}
	p := SharedData(t, "SOURCES.md")
	if want := filepath.Join(filepath.Dir(root), "shared", "data", "SOURCES.md"); p != want {
		t.Errorf("SharedData = %s, want %s", p, want)
	}
}

// TestConfigRoutesEveryService proves that clients built by the caller from
// Config(t) (not only the ready-made ones) reach the local servers.
func TestConfigRoutesEveryService(t *testing.T) {
	cfg := Config(t)
	ctx := t.Context()
	if _, err := kinesis.NewFromConfig(cfg).ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)}); err != nil {
		t.Errorf("kinesis: %v", err)
	}
	if _, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)}); err != nil {
		t.Errorf("dynamodb: %v", err)
	}
	if _, err := sns.NewFromConfig(cfg).ListTopics(ctx, &sns.ListTopicsInput{}); err != nil {
		t.Errorf("sns: %v", err)
	}
	if _, err := sqs.NewFromConfig(cfg).ListQueues(ctx, &sqs.ListQueuesInput{}); err != nil {
		t.Errorf("sqs: %v", err)
	}
}

func TestCreateStreamRoundTripAndCleanup(t *testing.T) {
	t.Parallel()
	client := Kinesis(t)
	name := Name(t, "s")
	t.Run("use", func(t *testing.T) {
		arn := CreateStream(t, name, 2)
		if !strings.HasSuffix(arn, ":stream/"+name) {
			t.Errorf("ARN = %q, want suffix :stream/%s", arn, name)
		}
		out, err := client.PutRecord(t.Context(), &kinesis.PutRecordInput{
			StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: []byte("hello"),
		})
		if err != nil {
			t.Fatal(err)
		}
		it, err := client.GetShardIterator(t.Context(), &kinesis.GetShardIteratorInput{
			StreamName: aws.String(name), ShardId: out.ShardId, ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := client.GetRecords(t.Context(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs.Records) != 1 || string(recs.Records[0].Data) != "hello" {
			t.Errorf("GetRecords = %d records, want the one written", len(recs.Records))
		}
	})
	waitGone(t, func(ctx context.Context) error {
		_, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		var nf *kintypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil
		}
		return errors.New("stream still exists")
	})
}

func TestCreateTableRoundTripAndCleanup(t *testing.T) {
	t.Parallel()
	client := DynamoDB(t)
	name := Name(t, "t")
	t.Run("use", func(t *testing.T) {
		CreateTable(t, name, "pk", "sk")
		out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, k := range out.Table.KeySchema {
			keys = append(keys, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
		}
		if diff := cmp.Diff([]string{"pk:HASH", "sk:RANGE"}, keys); diff != "" {
			t.Errorf("key schema mismatch (-want +got):\n%s", diff)
		}
	})
	waitGone(t, func(ctx context.Context) error {
		_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		var nf *ddbtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil
		}
		return errors.New("table still exists")
	})
}

func TestTopicDeliversToQueue(t *testing.T) {
	t.Parallel()
	arn := CreateTopic(t, Name(t, "topic"))
	if !strings.HasPrefix(arn, "arn:aws:sns:"+Region+":"+AccountID+":") {
		t.Errorf("topic ARN = %q, want the stack's region and account", arn)
	}
	queueURL := SubscribeQueue(t, arn)
	if _, err := SNS(t).Publish(t.Context(), &sns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("flood")}); err != nil {
		t.Fatal(err)
	}
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for len(got) == 0 && time.Now().Before(deadline) {
		out, err := SQS(t).ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), WaitTimeSeconds: 1, MaxNumberOfMessages: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			got = append(got, aws.ToString(m.Body))
		}
	}
	if diff := cmp.Diff([]string{"flood"}, got); diff != "" {
		t.Errorf("delivered messages mismatch (-want +got):\n%s", diff)
	}
}

func waitGone(t *testing.T, gone func(context.Context) error) {
	t.Helper()
	err := poll(t.Context(), func() (bool, error) { return gone(t.Context()) == nil, nil })
	if err != nil {
		t.Errorf("resource not deleted by t.Cleanup: %v", err)
	}
}
