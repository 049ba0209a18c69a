package putter_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/shardwatch/shardwatch/internal/putter"
)

func TestMain(m *testing.M) {
	// The AWS SDK's HTTP client keeps idle connections to the local stack.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

// fakeKinesis records every PutRecords call and answers through respond,
// which may fail single entries (by data) or the whole call.
type fakeKinesis struct {
	mu      sync.Mutex
	calls   [][]string
	respond func(call int, data []string) (failCodes map[string]string, err error)
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data := make([]string, len(in.Records))
	for i, r := range in.Records {
		data[i] = string(r.Data)
		if aws.ToString(r.PartitionKey) == "" {
			return nil, errors.New("entry without partition key")
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, data)
	call := len(f.calls)
	f.mu.Unlock()
	var codes map[string]string
	if f.respond != nil {
		var err error
		if codes, err = f.respond(call, data); err != nil {
			return nil, err
		}
	}
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(data))}
	for i, d := range data {
		if c, ok := codes[d]; ok {
			out.Records[i].ErrorCode = aws.String(c)
			out.Records[i].ErrorMessage = aws.String("injected")
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
		} else {
			out.Records[i].SequenceNumber = aws.String(fmt.Sprint(call*1000 + i))
			out.Records[i].ShardId = aws.String("shardId-000000000000")
		}
	}
	return out, nil
}

func (f *fakeKinesis) Calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// sleeps records backoff waits instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func entries(data ...string) []putter.Entry {
	es := make([]putter.Entry, len(data))
	for i, d := range data {
		es[i] = putter.Entry{PartitionKey: "pk-" + d, Data: []byte(d)}
	}
	return es
}

func newPutter(t *testing.T, c putter.Client, cfg putter.Config, s *sleeps) *putter.Putter {
	t.Helper()
	if cfg.Stream == "" {
		cfg.Stream = "test"
	}
	p, err := putter.New(c, cfg, putter.WithSleep(s.sleep), putter.WithJitter(func(int64) int64 { return 0 }))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPutRetriesOnlyFailedEntries(t *testing.T) {
	fk := &fakeKinesis{respond: func(call int, _ []string) (map[string]string, error) {
		switch call {
		case 1:
			return map[string]string{"b": "ProvisionedThroughputExceededException", "d": "InternalFailure"}, nil
		case 2:
			return map[string]string{"d": "ProvisionedThroughputExceededException"}, nil
		}
		return nil, nil
	}}
	var s sleeps
	p := newPutter(t, fk, putter.Config{BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}, &s)
	res := p.Put(context.Background(), entries("a", "b", "c", "d", "e"))

	if diff := cmp.Diff([][]string{{"a", "b", "c", "d", "e"}, {"b", "d"}, {"d"}}, fk.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// Equal jitter with a zero random part: half of 100ms, then of 200ms.
	if diff := cmp.Diff([]time.Duration{50 * time.Millisecond, 100 * time.Millisecond}, s.d); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
	if res.Sent != 5 || res.Retried != 3 || len(res.Failed) != 0 {
		t.Errorf("result = sent %d retried %d failed %v, want 5, 3, none", res.Sent, res.Retried, res.Failed)
	}
}

func TestPutSplitsIntoCallLimits(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	tests := []struct {
		name  string
		cfg   putter.Config
		in    []putter.Entry
		sizes []int
	}{
		{"500 records per call", putter.Config{}, manyEntries(1201, "r"), []int{500, 500, 201}},
		// 17 x (300 KiB + key) fit in 5 MiB, 18 do not.
		{"5 MiB per call", putter.Config{}, manyEntries(40, big), []int{17, 17, 6}},
		{"configured records", putter.Config{MaxBatchRecords: 7}, manyEntries(15, "r"), []int{7, 7, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fk := &fakeKinesis{}
			p := newPutter(t, fk, tt.cfg, &sleeps{})
			res := p.Put(context.Background(), tt.in)
			var sizes []int
			for _, c := range fk.Calls() {
				sizes = append(sizes, len(c))
			}
			if diff := cmp.Diff(tt.sizes, sizes); diff != "" {
				t.Errorf("call sizes (-want +got):\n%s", diff)
			}
			if res.Sent != len(tt.in) || len(res.Failed) != 0 {
				t.Errorf("sent %d failed %d, want %d, 0", res.Sent, len(res.Failed), len(tt.in))
			}
		})
	}
}

func manyEntries(n int, payload string) []putter.Entry {
	es := make([]putter.Entry, n)
	for i := range es {
		es[i] = putter.Entry{PartitionKey: fmt.Sprint(i), Data: []byte(payload)}
	}
	return es
}

func TestPutWholeCallErrors(t *testing.T) {
	httpErr := func(status int) error {
		return &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      errors.New("injected"),
		}
	}
	tests := []struct {
		name      string
		err       error
		wantCalls int // with MaxAttempts 3 and the error on every call
		wantCode  string
	}{
		{"throttling retried", &smithy.GenericAPIError{Code: "ThrottlingException"}, 3, "ThrottlingException"},
		{"limit exceeded retried", &smithy.GenericAPIError{Code: "LimitExceededException"}, 3, "LimitExceededException"},
		{"server fault retried", &smithy.GenericAPIError{Code: "Whatever", Fault: smithy.FaultServer}, 3, "Whatever"},
		{"http 503 retried", httpErr(503), 3, ""},
		{"transport error retried", errors.New("connection refused"), 3, ""},
		{"unknown stream not retried", &smithy.GenericAPIError{Code: "ResourceNotFoundException", Fault: smithy.FaultClient}, 1, "ResourceNotFoundException"},
		{"access denied not retried", &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}, 1, "AccessDeniedException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fk := &fakeKinesis{respond: func(int, []string) (map[string]string, error) { return nil, tt.err }}
			p := newPutter(t, fk, putter.Config{MaxAttempts: 3}, &sleeps{})
			res := p.Put(context.Background(), entries("a", "b"))
			if got := len(fk.Calls()); got != tt.wantCalls {
				t.Errorf("calls = %d, want %d", got, tt.wantCalls)
			}
			if res.Sent != 0 || res.FailedRecords() != 2 {
				t.Fatalf("sent %d failed %d, want 0 and 2", res.Sent, res.FailedRecords())
			}
			for _, f := range res.Failed {
				if f.Code != tt.wantCode || !errors.Is(f.Err, tt.err) {
					t.Errorf("failure code %q err %v, want code %q wrapping %v", f.Code, f.Err, tt.wantCode, tt.err)
				}
				if tt.wantCalls > 1 && !errors.Is(f.Err, putter.ErrAttemptsExhausted) {
					t.Errorf("err %v does not wrap ErrAttemptsExhausted", f.Err)
				}
			}
		})
	}
}

func TestPutGivesUpAfterMaxAttempts(t *testing.T) {
	fk := &fakeKinesis{respond: func(int, []string) (map[string]string, error) {
		return map[string]string{"b": "ProvisionedThroughputExceededException"}, nil
	}}
	var s sleeps
	p := newPutter(t, fk, putter.Config{MaxAttempts: 4, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}, &s)
	res := p.Put(context.Background(), entries("a", "b", "c"))
	if diff := cmp.Diff([][]string{{"a", "b", "c"}, {"b"}, {"b"}, {"b"}}, fk.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// Doubling capped at MaxBackoff.
	if diff := cmp.Diff([]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond}, s.d); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
	if res.Sent != 2 || res.Retried != 3 || len(res.Failed) != 1 {
		t.Fatalf("sent %d retried %d failed %d, want 2, 3, 1", res.Sent, res.Retried, len(res.Failed))
	}
	f := res.Failed[0]
	var ee *putter.EntryError
	if string(f.Entry.Data) != "b" || f.Code != "ProvisionedThroughputExceededException" ||
		!errors.Is(f.Err, putter.ErrAttemptsExhausted) || !errors.As(f.Err, &ee) {
		t.Errorf("failure = %+v (err %v)", f, f.Err)
	}
}

func TestPutContextEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	fk := &fakeKinesis{respond: func(int, []string) (map[string]string, error) {
		cancel() // the stream throttles and then the caller gives up
		return map[string]string{"a": "ProvisionedThroughputExceededException"}, nil
	}}
	p := newPutter(t, fk, putter.Config{}, &sleeps{})
	res := p.Put(ctx, entries("a", "b"))
	if res.Sent != 1 || len(res.Failed) != 1 || !errors.Is(res.Failed[0].Err, context.Canceled) {
		t.Fatalf("sent %d failed %+v, want 1 sent and a failed a wrapping context.Canceled", res.Sent, res.Failed)
	}
	if got := len(fk.Calls()); got != 1 {
		t.Errorf("calls = %d, want 1", got)
	}
}

func TestPutRejectsInvalidEntries(t *testing.T) {
	fk := &fakeKinesis{}
	p := newPutter(t, fk, putter.Config{}, &sleeps{})
	in := []putter.Entry{
		{PartitionKey: "", Data: []byte("no key")},
		{PartitionKey: strings.Repeat("k", 257), Data: []byte("long key")},
		{PartitionKey: "k", Data: make([]byte, putter.MaxRecordBytes)}, // key pushes it over
		{PartitionKey: "k", Data: []byte("ok")},
	}
	res := p.Put(context.Background(), in)
	if diff := cmp.Diff([][]string{{"ok"}}, fk.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if res.Sent != 1 || len(res.Failed) != 3 {
		t.Fatalf("sent %d failed %d, want 1 and 3", res.Sent, len(res.Failed))
	}
	for _, f := range res.Failed {
		if !errors.Is(f.Err, putter.ErrInvalidEntry) {
			t.Errorf("failure %v does not wrap ErrInvalidEntry", f.Err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []putter.Config{
		{},
		{Stream: "s", MaxBatchRecords: 501},
		{Stream: "s", MaxBatchBytes: 6 << 20},
		{Stream: "s", MaxAttempts: -1},
		{Stream: "s", BaseBackoff: time.Second, MaxBackoff: time.Millisecond},
	} {
		if _, err := putter.New(&fakeKinesis{}, cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
}

// okKinesis answers every call with success from a preallocated output,
// so benchmarks measure the putter, not the fake.
type okKinesis struct{ out *kinesis.PutRecordsOutput }

func (k *okKinesis) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if len(k.out.Records) < len(in.Records) {
		k.out.Records = make([]types.PutRecordsResultEntry, len(in.Records))
	}
	return &kinesis.PutRecordsOutput{Records: k.out.Records[:len(in.Records)]}, nil
}

// BenchmarkPutBatching measures the putter's own cost per entry for full
// 500-record batches (no network).
func BenchmarkPutBatching(b *testing.B) {
	p, err := putter.New(&okKinesis{out: &kinesis.PutRecordsOutput{}}, putter.Config{Stream: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	in := manyEntries(putter.MaxBatchRecords, strings.Repeat("x", 300))
	b.ReportAllocs()
	for b.Loop() {
		if res := p.Put(context.Background(), in); res.Sent != len(in) {
			b.Fatalf("sent %d", res.Sent)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/entry")
}
