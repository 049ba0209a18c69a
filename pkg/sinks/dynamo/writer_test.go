package dynamo

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
	"github.com/shardwatch/shardwatch/pkg/sinks/retry"
)

func TestMain(m *testing.M) {
	// Keep-alive connections of the SDK's HTTP client outlive the tests.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

// fakeBatch is an in-memory BatchWriteItem keyed by the "pk" attribute. A
// hook may inject a result per call before the write is applied.
type fakeBatch struct {
	mu       sync.Mutex
	tables   map[string]map[string]map[string]types.AttributeValue
	calls    int
	sizes    []int
	inFlight int
	maxIn    int
	// hook runs per call (1-based n); a non-nil error fails the call, a
	// non-nil unprocessed set is left unwritten and returned.
	hook func(n int, req map[string][]types.WriteRequest) (unprocessed map[string][]types.WriteRequest, err error)
	// gate, when set, holds every call until closed (concurrency test).
	gate chan struct{}
}

func newFakeBatch() *fakeBatch {
	return &fakeBatch{tables: map[string]map[string]map[string]types.AttributeValue{}}
}

func pkOf(item map[string]types.AttributeValue) string {
	if v, ok := item["pk"].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func (f *fakeBatch) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	f.sizes = append(f.sizes, countRequests(in.RequestItems))
	gate := f.gate
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if countRequests(in.RequestItems) > BatchSize {
		return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "too many items"}
	}
	seen := map[string]bool{}
	for table, reqs := range in.RequestItems {
		for _, r := range reqs {
			k := table + "/" + pkOf(r.PutRequest.Item)
			if seen[k] {
				return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "Provided list of item keys contains duplicates"}
			}
			seen[k] = true
			if pkOf(r.PutRequest.Item) == "bad" {
				return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "bad item"}
			}
		}
	}
	var un map[string][]types.WriteRequest
	if f.hook != nil {
		var err error
		if un, err = f.hook(n, in.RequestItems); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for table, reqs := range in.RequestItems {
		for _, r := range reqs {
			if containsReq(un[table], r) {
				continue
			}
			if f.tables[table] == nil {
				f.tables[table] = map[string]map[string]types.AttributeValue{}
			}
			f.tables[table][pkOf(r.PutRequest.Item)] = r.PutRequest.Item
		}
	}
	return &dynamodb.BatchWriteItemOutput{UnprocessedItems: un}, nil
}

func containsReq(reqs []types.WriteRequest, r types.WriteRequest) bool {
	for _, x := range reqs {
		if attrsEqual(x.PutRequest.Item, r.PutRequest.Item) {
			return true
		}
	}
	return false
}

// firstHalf returns the first half of each table's requests as unprocessed,
// copying the items as the real service does.
func firstHalf(req map[string][]types.WriteRequest) map[string][]types.WriteRequest {
	un := map[string][]types.WriteRequest{}
	for table, reqs := range req {
		for _, r := range reqs[:(len(reqs)+1)/2] {
			cp := make(map[string]types.AttributeValue, len(r.PutRequest.Item))
			for k, v := range r.PutRequest.Item {
				cp[k] = v
			}
			un[table] = append(un[table], types.WriteRequest{PutRequest: &types.PutRequest{Item: cp}})
		}
	}
	return un
}

type sleepRecorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.mu.Unlock()
	return ctx.Err()
}

// maxJitter makes every backoff its ceiling, so delays are predictable.
func maxJitter(n int64) int64 { return n - 1 }

func item(table, pk, val string) results.Item {
	return results.Item{Table: table, Key: pk, Attrs: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"v":  &types.AttributeValueMemberS{Value: val},
	}}
}

func newTestWriter(t *testing.T, api BatchWriteAPI, sl *sleepRecorder, maxAttempts int) *ItemWriter {
	t.Helper()
	w, err := NewItemWriter(api, WriterOptions{Retry: retry.Policy{
		MaxAttempts: maxAttempts, Base: 10 * time.Millisecond, Cap: 80 * time.Millisecond,
		Sleep: sl.sleep, Jitter: maxJitter,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestItemWriterDedupAndChunks(t *testing.T) {
	f := newFakeBatch()
	w := newTestWriter(t, f, &sleepRecorder{}, -1)
	// 1,000 items over 400 keys and two tables: the last write per key wins.
	var items []results.Item
	want := map[string]map[string]string{}
	for i := range 1000 {
		table := "t" + strconv.Itoa(i%2)
		pk := "k" + strconv.Itoa(i%400)
		val := "v" + strconv.Itoa(i)
		items = append(items, item(table, pk, val))
		if want[table] == nil {
			want[table] = map[string]string{}
		}
		want[table][pk] = val
	}
	if err := w.WriteItems(t.Context(), items); err != nil {
		t.Fatalf("WriteItems: %v", err)
	}
	got := map[string]map[string]string{}
	for table, rows := range f.tables {
		got[table] = map[string]string{}
		for pk, it := range rows {
			got[table][pk] = it["v"].(*types.AttributeValueMemberS).Value
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("table contents (-want +got):\n%s", d)
	}
	// 400 distinct (table, key) pairs -> 16 full calls.
	if f.calls != 16 {
		t.Errorf("calls = %d, want 16", f.calls)
	}
	for _, n := range f.sizes {
		if n != BatchSize {
			t.Errorf("call size %d, want %d", n, BatchSize)
		}
	}
	st := w.Stats()
	if diff := cmp.Diff(WriterStats{Items: 1000, Duplicates: 600, Written: 400, Calls: 16}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestItemWriterFaults(t *testing.T) {
	throttle := &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "slow down"}
	tests := []struct {
		name        string
		n           int // items, keys k0..k(n-1)
		maxAttempts int
		hook        func(n int, req map[string][]types.WriteRequest) (map[string][]types.WriteRequest, error)
		bad         []int // item indices with pk "bad"... replaced
		wantFailed  []int
		wantErrIs   []error
		wantCode    string // smithy.APIError code every failure must carry
		wantDelays  []time.Duration
		wantWritten int
	}{
		{
			name: "unprocessed on first 3 calls then ok",
			n:    10,
			hook: func(n int, req map[string][]types.WriteRequest) (map[string][]types.WriteRequest, error) {
				if n <= 3 {
					return firstHalf(req), nil
				}
				return nil, nil
			},
			// ceilings 10, 20, 40 ms (maxJitter gives ceiling exactly).
			wantDelays:  []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond},
			wantWritten: 10,
		},
		{
			name: "throttled twice then ok",
			n:    10,
			hook: func(n int, req map[string][]types.WriteRequest) (map[string][]types.WriteRequest, error) {
				if n <= 2 {
					return nil, throttle
				}
				return nil, nil
			},
			wantDelays:  []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
			wantWritten: 10,
		},
		{
			name:        "always unprocessed exhausts attempts",
			n:           4,
			maxAttempts: 3,
			hook: func(n int, req map[string][]types.WriteRequest) (map[string][]types.WriteRequest, error) {
				return firstHalf(req), nil
			},
			// 4 -> 2 written on call 1 leaving 2, call 2 writes 1, call 3 writes 0 of 1.
			wantFailed:  []int{0},
			wantErrIs:   []error{ErrUnprocessed, retry.ErrExhausted},
			wantDelays:  []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
			wantWritten: 3,
		},
		{
			name:        "validation error isolates the bad item",
			n:           5,
			bad:         []int{3},
			wantFailed:  []int{3},
			wantCode:    "ValidationException",
			wantWritten: 4,
		},
		{
			name:        "throttled until attempts run out",
			n:           2,
			maxAttempts: 4,
			hook: func(int, map[string][]types.WriteRequest) (map[string][]types.WriteRequest, error) {
				return nil, throttle
			},
			wantFailed: []int{0, 1},
			wantErrIs:  []error{retry.ErrExhausted},
			wantDelays: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond},
		},
		{
			name:        "invalid input fails alone",
			n:           3,
			bad:         []int{-1},
			wantFailed:  []int{1},
			wantErrIs:   []error{sinks.ErrInvalidInput},
			wantWritten: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBatch()
			f.hook = tt.hook
			sl := &sleepRecorder{}
			w := newTestWriter(t, f, sl, tt.maxAttempts)
			var items []results.Item
			for i := range tt.n {
				items = append(items, item("t", "k"+strconv.Itoa(i), "v"))
			}
			for _, b := range tt.bad {
				if b < 0 {
					items[1].Key = "" // invalid: no key
				} else {
					items[b] = item("t", "bad", "v")
				}
			}
			err := w.WriteItems(t.Context(), items)
			var gotFailed []int
			var be *sinks.BatchError
			if errors.As(err, &be) {
				for _, fl := range be.Failed {
					gotFailed = append(gotFailed, fl.Index)
					var apiErr smithy.APIError
					if tt.wantCode != "" && (!errors.As(fl.Err, &apiErr) || apiErr.ErrorCode() != tt.wantCode) {
						t.Errorf("failure %d: %v does not carry code %s", fl.Index, fl.Err, tt.wantCode)
					}
					for _, want := range tt.wantErrIs {
						if !errors.Is(fl.Err, want) {
							t.Errorf("failure %d: %v is not %v", fl.Index, fl.Err, want)
						}
					}
				}
				if be.Total != tt.n {
					t.Errorf("Total = %d, want %d", be.Total, tt.n)
				}
			} else if err != nil {
				t.Fatalf("error %v is not a BatchError", err)
			}
			if d := cmp.Diff(tt.wantFailed, gotFailed); d != "" {
				t.Errorf("failed indices (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantDelays, sl.delays); d != "" {
				t.Errorf("backoff delays (-want +got):\n%s", d)
			}
			if got := len(f.tables["t"]); got != tt.wantWritten {
				t.Errorf("rows written = %d, want %d", got, tt.wantWritten)
			}
			if st := w.Stats(); int(st.Written) != tt.wantWritten || int(st.Failed) != len(tt.wantFailed) {
				t.Errorf("stats written/failed = %d/%d, want %d/%d", st.Written, st.Failed, tt.wantWritten, len(tt.wantFailed))
			}
		})
	}
}

func TestItemWriterBoundedConcurrency(t *testing.T) {
	f := newFakeBatch()
	f.gate = make(chan struct{})
	w, err := NewItemWriter(f, WriterOptions{MaxInFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	var items []results.Item
	for i := range 250 {
		items = append(items, item("t", "k"+strconv.Itoa(i), "v"))
	}
	done := make(chan error, 1)
	go func() { done <- w.WriteItems(t.Context(), items) }()
	// Wait until the writer has filled its window, then release it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		f.mu.Lock()
		in := f.inFlight
		f.mu.Unlock()
		if in == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in flight = %d, never reached 4", in)
		}
		time.Sleep(time.Millisecond) // polling a condition, not synchronising
	}
	close(f.gate)
	if err := <-done; err != nil {
		t.Fatalf("WriteItems: %v", err)
	}
	if f.maxIn != 4 || f.calls != 10 || len(f.tables["t"]) != 250 {
		t.Errorf("max in flight %d, calls %d, rows %d; want 4, 10, 250", f.maxIn, f.calls, len(f.tables["t"]))
	}
}

func TestItemWriterCanceledDuringBackoff(t *testing.T) {
	f := newFakeBatch()
	throttle := &smithy.GenericAPIError{Code: "ThrottlingException"}
	f.hook = func(int, map[string][]types.WriteRequest) (map[string][]types.WriteRequest, error) {
		return nil, throttle
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w, err := NewItemWriter(f, WriterOptions{Retry: retry.Policy{Sleep: func(ctx context.Context, _ time.Duration) error {
		cancel() // shutdown arrives while backing off
		return ctx.Err()
	}}})
	if err != nil {
		t.Fatal(err)
	}
	err = w.WriteItems(ctx, []results.Item{item("t", "a", "1"), item("t", "b", "2")})
	var be *sinks.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 2 {
		t.Fatalf("err = %v, want BatchError with 2 failures", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v does not wrap context.Canceled", err)
	}
	var apiErr smithy.APIError
	if !errors.As(be.Failed[0].Err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
		t.Errorf("failure %v does not keep the last throttling error", be.Failed[0].Err)
	}
	if f.calls != 1 {
		t.Errorf("calls = %d, want 1", f.calls)
	}
}
