package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/shardwatch/shardwatch/internal/putter"
	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestMain(m *testing.M) {
	// The AWS SDK's HTTP client keeps idle connections to the local stack.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

// fakeKinesis accepts every record, or fails every call with err.
type fakeKinesis struct {
	mu   sync.Mutex
	recs []types.PutRecordsRequestEntry
	err  error
}

func (f *fakeKinesis) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range in.Records {
		// Copy: the request points into the putter's buffers.
		f.recs = append(f.recs, types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: aws.String(aws.ToString(r.PartitionKey))})
	}
	return &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}, nil
}

func (f *fakeKinesis) data() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.recs))
	for i, r := range f.recs {
		out[i] = string(r.Data)
	}
	return out
}

func (f *fakeKinesis) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.recs))
	for i, r := range f.recs {
		out[i] = aws.ToString(r.PartitionKey)
	}
	return out
}

// fakeClock advances only when slept on.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}

// testEnv returns an env writing to buffers, with client as Kinesis.
func testEnv(client putter.Client, clock *fakeClock) (env, *syncBuffer) {
	var stderr syncBuffer
	e := defaultEnv()
	e.getenv = func(string) string { return "" }
	e.stdout, e.stderr = &stderr, &stderr
	e.newClient = func(context.Context, string) (putter.Client, error) { return client, nil }
	if clock != nil {
		e.now, e.sleep = clock.now, clock.sleep
	}
	return e, &stderr
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fileLines returns the lines of a file without line ends.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
}

func TestReplayCloudFrontSkipsHeaders(t *testing.T) {
	path := testenv.SharedData(t, "cloudfront/aws-samples-cloudfront.log")
	var want, wantKeys []string
	for _, l := range fileLines(t, path) {
		if !strings.HasPrefix(l, "#") {
			want = append(want, l)
			wantKeys = append(wantKeys, strings.Split(l, "\t")[4]) // c-ip
		}
	}
	fk := &fakeKinesis{}
	e, stderr := testEnv(fk, nil)
	if err := run(context.Background(), []string{"replay", "--stream", "s", path, "--speed", "max", "--concurrency", "1"}, e); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if diff := cmp.Diff(want, fk.data()); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantKeys, fk.keys()); diff != "" {
		t.Errorf("partition keys (-want +got):\n%s", diff)
	}
	if want := fmt.Sprintf("sent=%d retried=0 failed=0 lines=%d skipped=2", len(want), len(want)); !strings.Contains(stderr.String(), want) {
		t.Errorf("summary lacks %q:\n%s", want, stderr)
	}
}

func TestReplayOrdersCSVSkipsHeaderRow(t *testing.T) {
	lines := fileLines(t, testenv.SharedData(t, "orders/online-retail-2010-12.csv"))[:300]
	path := filepath.Join(t.TempDir(), "orders.csv")
	// CRLF line ends are not part of the payload.
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\r\n")+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fk := &fakeKinesis{}
	e, stderr := testEnv(fk, nil)
	args := []string{"replay", "--stream", "s", "--speed", "max", "--partition-key", "customer", "--concurrency", "1", path}
	if err := run(context.Background(), args, e); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if diff := cmp.Diff(lines[1:], fk.data()); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	for i, k := range fk.keys() {
		row, err := csv.NewReader(strings.NewReader(lines[i+1])).Read()
		if err != nil {
			t.Fatal(err)
		}
		cust := row[6] // "17850.0" or ""
		if want := strings.TrimSuffix(cust, ".0"); want != "" && k != want {
			t.Fatalf("record %d: key %q, want customer %q", i, k, want)
		}
	}
}

func TestReplayPacing(t *testing.T) {
	t0 := time.Date(2015, 5, 17, 10, 5, 0, 0, time.UTC)
	tests := []struct {
		name   string
		speed  float64
		maxGap time.Duration
		events []time.Duration // offsets from t0; -1 = no timestamp
		want   []time.Duration // sleeps
	}{
		{"scaled gaps", 10, time.Minute, []time.Duration{0, 10 * time.Second, 30 * time.Second}, []time.Duration{time.Second, 2 * time.Second}},
		{"out of order never waits negative", 10, time.Minute,
			[]time.Duration{0, 20 * time.Second, 5 * time.Second, 30 * time.Second}, []time.Duration{2 * time.Second, time.Second}},
		{"gap capped", 1, 5 * time.Second, []time.Duration{0, time.Hour, time.Hour + time.Second}, []time.Duration{5 * time.Second, time.Second}},
		{"untimed records do not wait", 1, time.Minute, []time.Duration{0, -1, 2 * time.Second}, []time.Duration{2 * time.Second}},
		{"max speed never waits", 0, time.Minute, []time.Duration{0, time.Hour}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1e9, 0)}
			p := pacer{speed: tt.speed, maxGap: tt.maxGap, now: clk.now, sleep: clk.sleep}
			for _, off := range tt.events {
				var ts time.Time
				if off >= 0 {
					ts = t0.Add(off)
				}
				if err := p.wait(context.Background(), ts); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tt.want, clk.slept); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPacerDoesNotBurstAfterStall(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	p := pacer{speed: 1, maxGap: time.Minute, now: clk.now, sleep: clk.sleep}
	t0 := time.Unix(0, 0)
	_ = p.wait(context.Background(), t0)
	clk.t = clk.t.Add(time.Minute) // the stream stalled for a minute
	for i := 1; i <= 5; i++ {
		_ = p.wait(context.Background(), t0.Add(time.Duration(i)*time.Second))
	}
	// At most maxLag (1 s) is caught up; the rest keeps its spacing.
	if diff := cmp.Diff([]time.Duration{time.Second, time.Second, time.Second}, clk.slept); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
}

func TestReadLines(t *testing.T) {
	type line struct {
		Text    string
		TooLong bool
	}
	tests := []struct {
		name string
		in   string
		want []line
	}{
		{"lf", "a\nb\n", []line{{"a", false}, {"b", false}}},
		{"crlf and no final newline", "a\r\nb", []line{{"a", false}, {"b", false}}},
		{"empty lines kept for the caller", "\n\na\n", []line{{"", false}, {"", false}, {"a", false}}},
		{"lone cr stays", "a\rb\n", []line{{"a\rb", false}}},
		{"exactly max", "12345678\n", []line{{"12345678", false}}},
		{"too long cut to max+1", "123456789abc\nok\n", []line{{"123456789", true}, {"ok", false}}},
		{"empty input", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []line
			err := readLines(strings.NewReader(tt.in), 8, func(l []byte, tooLong bool) error {
				got = append(got, line{string(l), tooLong})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// Lines longer than the bufio buffer (64 KiB) are read whole.
	long := strings.Repeat("x", 200<<10)
	var n int
	if err := readLines(strings.NewReader(long+"\n"+long), 1<<20, func(l []byte, tooLong bool) error {
		if string(l) != long || tooLong {
			t.Errorf("long line: %d bytes, tooLong %v", len(l), tooLong)
		}
		n++
		return nil
	}); err != nil || n != 2 {
		t.Fatalf("long lines: n=%d err=%v", n, err)
	}
}

func TestReplayFailureExitsNonZero(t *testing.T) {
	fk := &fakeKinesis{err: &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Stream s not found", Fault: smithy.FaultClient}}
	path := filepath.Join(t.TempDir(), "access.log")
	log := `192.0.2.1 - - [22/Jan/2019:03:56:14 +0330] "GET / HTTP/1.1" 200 5 "-" "curl/8.0"` + "\n"
	if err := os.WriteFile(path, []byte(strings.Repeat(log, 3)), 0o600); err != nil {
		t.Fatal(err)
	}
	e, stderr := testEnv(fk, nil)
	err := run(context.Background(), []string{"replay", "--stream", "s", "--speed", "max", path}, e)
	if !errors.Is(err, errRecordsFailed) {
		t.Fatalf("run = %v, want errRecordsFailed\n%s", err, stderr)
	}
	if !strings.Contains(stderr.String(), "sent=0 retried=0 failed=3") || !strings.Contains(stderr.String(), "ResourceNotFoundException") {
		t.Errorf("stderr lacks the failure summary or code:\n%s", stderr)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	args := []string{"generate", "--stream", "s", "--count", "500", "--rate", "1000", "--seed", "9",
		"--start-time", "2026-11-22T09:00:00Z", "--flood-every", "10s", "--concurrency", "1", "--partition-key", "session"}
	runOnce := func() ([]string, []string) {
		fk := &fakeKinesis{}
		e, stderr := testEnv(fk, &fakeClock{t: time.Unix(2e9, 0)})
		if err := run(context.Background(), args, e); err != nil {
			t.Fatalf("run: %v\n%s", err, stderr)
		}
		return fk.data(), fk.keys()
	}
	d1, k1 := runOnce()
	d2, k2 := runOnce()
	if len(d1) != 500 {
		t.Fatalf("%d records, want 500", len(d1))
	}
	if diff := cmp.Diff(d1, d2); diff != "" {
		t.Errorf("same seed, different payloads (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(k1, k2); diff != "" {
		t.Errorf("same seed, different partition keys (-first +second):\n%s", diff)
	}
	// The payloads are the traffic generator's for the same config.
	g, err := traffic.New(traffic.Config{Seed: 9, Start: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), Rate: 1000,
		BotShare: 0.2, OrderShare: 0.02, FloodEvery: 10 * time.Second, Hosts: []string{"shop.example.com", "blog.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	var ev traffic.Event
	for i := range d1 {
		g.Next(&ev)
		if string(ev.Payload) != d1[i] {
			t.Fatalf("record %d:\n got %s\nwant %s", i, d1[i], ev.Payload)
		}
	}
}

func TestGenerateAnomalies(t *testing.T) {
	args := []string{"generate", "--stream", "s", "--count", "3000", "--rate", "1000", "--seed", "4", "--anomalies",
		"--sensors", "DemoSensor,Boiler", "--start-time", "2026-11-22T09:00:00Z", "--concurrency", "1"}
	fk := &fakeKinesis{}
	e, stderr := testEnv(fk, &fakeClock{t: time.Unix(2e9, 0)})
	if err := run(context.Background(), args, e); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	d, err := records.NewJSONDecoder(records.JSONFields{Time: "ts", Key: "iotName", Values: []string{"iotValue"}})
	if err != nil {
		t.Fatal(err)
	}
	data, keys := fk.data(), fk.keys()
	if len(data) != 3000 {
		t.Fatalf("%d records", len(data))
	}
	high := 0
	var r records.Record
	for i, p := range data {
		if err := d.Decode([]byte(p), &r); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if keys[i] != r.Key || (r.Key != "DemoSensor" && r.Key != "Boiler") {
			t.Fatalf("record %s has partition key %q", p, keys[i])
		}
		if r.Values[0] >= 100 {
			high++
		}
	}
	if high < 10 || high > 60 {
		t.Errorf("%d of 3000 readings anomalous, want about 30", high)
	}
}

func TestGenerateSpike(t *testing.T) {
	args := []string{"generate", "--stream", "s", "--duration", "40s", "--rate", "100", "--seed", "4",
		"--hosts", "a,b", "--spike-host", "b", "--spike-at", "10s", "--spike-for", "10s", "--spike-factor", "10",
		"--start-time", "2026-11-22T09:00:00Z", "--concurrency", "1", "--speedup", "1000"}
	fk := &fakeKinesis{}
	e, stderr := testEnv(fk, &fakeClock{t: time.Unix(2e9, 0)})
	if err := run(context.Background(), args, e); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	start := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	var in, out int // hits on b per 10 s inside and (averaged) outside the spike
	var r records.Record
	d := &records.ClickstreamDecoder{}
	for _, p := range fk.data() {
		if err := d.Decode([]byte(p), &r); err != nil || r.Kind != records.KindHit || r.Host != "b" {
			continue
		}
		if off := r.Time.Sub(start); off >= 10*time.Second && off < 20*time.Second {
			in++
		} else {
			out++
		}
	}
	ratio := float64(in) / (float64(out) / 3)
	if ratio < 7 || ratio > 13 {
		t.Errorf("host b: %d hits in the 10 s spike, %d in 30 s outside: ratio %.1f, want about 10", in, out, ratio)
	}
}

func TestGenerateDurationPacesOnTheClock(t *testing.T) {
	fk := &fakeKinesis{}
	clk := &fakeClock{t: time.Unix(2e9, 0)}
	e, stderr := testEnv(fk, clk)
	if err := run(context.Background(), []string{"generate", "--stream", "s", "--rate", "50", "--duration", "10s"}, e); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	// Poisson at 50/s for 10 s: about 500 records, spread over the 10 s.
	if n := len(fk.data()); n < 400 || n > 600 {
		t.Errorf("%d records in 10 s at 50/s", n)
	}
	if elapsed := clk.now().Sub(time.Unix(2e9, 0)); elapsed < 9*time.Second || elapsed > 10*time.Second {
		t.Errorf("paced over %v, want about 10s", elapsed)
	}
}

func TestCollectDrainsOnShutdown(t *testing.T) {
	fk := &fakeKinesis{}
	e, stderr := testEnv(fk, nil)
	lnc := make(chan net.Listener, 1)
	e.listen = func(ctx context.Context, _ string) (net.Listener, error) {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err == nil {
			lnc <- ln
		}
		return ln, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"collect", "--stream", "s", "--cookie-secure=false", "--linger", "1h", "--rate-limit", "-1"}, e)
	}()
	ln := <-lnc
	client := &http.Client{}
	for i := range 50 {
		resp, err := client.Get(fmt.Sprintf("http://%s/collect?p=/page/%d", ln.Addr(), i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	client.CloseIdleConnections()
	// With a 1 h linger nothing is sent before shutdown: the drain does it.
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	got := fk.data()
	if len(got) != 50 {
		t.Fatalf("%d records after shutdown, want 50\n%s", len(got), stderr)
	}
	var paths []string
	for _, d := range got {
		i := strings.Index(d, `"path":"`)
		paths = append(paths, d[i+8:i+8+strings.IndexByte(d[i+8:], '"')])
	}
	slices.Sort(paths)
	var want []string
	for i := range 50 {
		want = append(want, fmt.Sprintf("/page/%d", i))
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr.String(), "hits=50 rejected_full=0") {
		t.Errorf("summary lacks collector counts:\n%s", stderr)
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no mode"},
		{[]string{"fly"}, "unknown mode"},
		{[]string{"replay", "x.log"}, "--stream"},
		{[]string{"replay", "--stream", "s"}, "no input files"},
		{[]string{"replay", "--stream", "s", "--speed", "fast", "x"}, "--speed"},
		{[]string{"replay", "--stream", "s", "--speed", "-2", "x"}, "--speed"},
		{[]string{"replay", "--stream", "s", "/nonexistent/file.log"}, "no such file"},
		{[]string{"generate", "--stream", "s", "--partition-key", "shard"}, "partition key"},
		{[]string{"generate", "--stream", "s", "--bot-share", "2"}, "bot share"},
		{[]string{"generate", "--stream", "s", "--start-time", "yesterday"}, "--start-time"},
		{[]string{"collect", "--stream", "s", "--trusted-proxies", "nope"}, "trusted"},
		{[]string{"generate", "--stream", "s", "--anomalies", "--spike-host", "h"}, "--spike-host"},
		{[]string{"generate", "--stream", "s", "--anomalies", "--anomaly-share", "0"}, "--anomaly-share"},
		{[]string{"generate", "--stream", "s", "--spike-host", "h", "--spike-factor", "0.5"}, "spike"},
	}
	for _, tt := range tests {
		e, _ := testEnv(&fakeKinesis{}, nil)
		err := run(context.Background(), tt.args, e)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tt.args, err, tt.want)
		}
	}
}

// scanLines is a helper for integration tests: the lines of path.
func scanLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
