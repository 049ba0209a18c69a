package cloudwatch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/encoding/cbor"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
	"github.com/shardwatch/shardwatch/pkg/sinks/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

// sent is one decoded PutMetricData request.
type sent struct {
	Namespace string
	Data      []datum
	Size      int
}

type datum struct {
	Name       string
	Unit       string
	Dims       string // "a=1,b=2"
	Time       time.Time
	Resolution int64
	Values     []float64
	Counts     []float64
}

// capture is a CloudWatch endpoint that decodes every request body. fail,
// when set, picks a status and error code for a request.
type capture struct {
	t    *testing.T
	mu   sync.Mutex
	reqs []sent
	fail func(n int, s sent) (status int, code string)
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	// The SDK gzips PutMetricData bodies (the operation has request
	// compression); the size limits apply to what CloudWatch decodes.
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			c.t.Errorf("gunzip request: %v", err)
			w.WriteHeader(500)
			return
		}
	}
	// The protocol is pinned: a change of SDK protocol must show up here.
	if got := r.Header.Get("Smithy-Protocol"); got != "rpc-v2-cbor" {
		c.t.Errorf("Smithy-Protocol header = %q, want rpc-v2-cbor", got)
	}
	if !strings.HasSuffix(r.URL.Path, "/operation/PutMetricData") {
		c.t.Errorf("path %q is not PutMetricData", r.URL.Path)
	}
	s, err := decode(body)
	if err != nil {
		c.t.Errorf("decode CBOR request: %v", err)
		w.WriteHeader(500)
		return
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, s)
	n := len(c.reqs)
	c.mu.Unlock()
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if c.fail != nil {
		if status, code := c.fail(n, s); status != 0 {
			w.WriteHeader(status)
			_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#" + code), "message": cbor.String("injected")}))
			return
		}
	}
	_, _ = w.Write(cbor.Encode(cbor.Map{}))
}

// decode turns a PutMetricData CBOR body into a sent. Unexpected shapes
// panic, which the test server turns into a failed request.
func decode(body []byte) (s sent, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unexpected request shape: %v", r)
		}
	}()
	v, err := cbor.Decode(body)
	if err != nil {
		return s, err
	}
	m := v.(cbor.Map)
	s = sent{Namespace: string(m["Namespace"].(cbor.String)), Size: len(body)}
	floats := func(v cbor.Value) []float64 {
		if v == nil {
			return nil
		}
		var out []float64
		for _, x := range v.(cbor.List) {
			f, err := cbor.AsFloat64(x)
			if err != nil {
				panic(err)
			}
			out = append(out, f)
		}
		return out
	}
	for _, x := range m["MetricData"].(cbor.List) {
		dm := x.(cbor.Map)
		d := datum{Name: string(dm["MetricName"].(cbor.String)), Values: floats(dm["Values"]), Counts: floats(dm["Counts"])}
		if u, ok := dm["Unit"].(cbor.String); ok {
			d.Unit = string(u)
		}
		if r, err := cbor.AsInt64(dm["StorageResolution"]); err == nil {
			d.Resolution = r
		}
		if ts, err := cbor.AsTime(dm["Timestamp"]); err == nil {
			d.Time = ts.UTC()
		}
		if dims, ok := dm["Dimensions"].(cbor.List); ok {
			var parts []string
			for _, y := range dims {
				dd := y.(cbor.Map)
				parts = append(parts, string(dd["Name"].(cbor.String))+"="+string(dd["Value"].(cbor.String)))
			}
			d.Dims = strings.Join(parts, ",")
		}
		s.Data = append(s.Data, d)
	}
	return s, nil
}

func newCaptured(t *testing.T, c *capture, opts Options) *Writer {
	t.Helper()
	c.t = t
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	client := cloudwatch.New(cloudwatch.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient:   srv.Client(),
		// Our retry policy is under test, not the SDK's.
		RetryMaxAttempts: 1,
	})
	if opts.Retry.Sleep == nil {
		opts.Retry.Sleep = func(context.Context, time.Duration) error { return nil }
	}
	w, err := New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var t0 = time.Date(2026, 11, 22, 9, 41, 7, 0, time.UTC)

func TestWriteMetricsAggregation(t *testing.T) {
	c := &capture{}
	w := newCaptured(t, c, Options{Namespace: "Test/NS"})
	edge := []results.Dim{{Name: "Stream", Value: "s1"}, {Name: "Edge", Value: "FRA53"}}
	edgeSorted := []results.Dim{{Name: "Edge", Value: "FRA53"}, {Name: "Stream", Value: "s1"}}
	data := []results.Datum{
		{Name: "Requests", Unit: "Count", Dims: edge, Time: t0, Value: 1},
		{Name: "Requests", Unit: "Count", Dims: edgeSorted, Time: t0.Add(300 * time.Millisecond), Value: 1},
		{Name: "Requests", Unit: "Count", Dims: edge, Time: t0, Value: 2},
		// Sum of 5 observations: value 2 with weight 5, merged with the 2 above.
		{Name: "Requests", Unit: "Count", Dims: edge, Time: t0, Value: 10, Count: 5},
		{Name: "Requests", Unit: "Count", Dims: edge, Time: t0.Add(time.Second), Value: 7},
		{Name: "LagMs", Unit: "Milliseconds", Time: t0, Value: 120},
		{Name: "NoUnit", Time: t0, Value: 3},
		{Name: "Bad", Time: t0, Value: math.NaN()},
	}
	err := w.WriteMetrics(t.Context(), data)
	var be *sinks.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != 7 || !errors.Is(err, sinks.ErrInvalidInput) {
		t.Fatalf("err = %v, want one invalid-input failure at index 7", err)
	}
	want := []sent{{Namespace: "Test/NS", Data: []datum{
		{Name: "Requests", Unit: "Count", Dims: "Edge=FRA53,Stream=s1", Time: t0, Resolution: 1, Values: []float64{1, 2}, Counts: []float64{2, 6}},
		{Name: "Requests", Unit: "Count", Dims: "Edge=FRA53,Stream=s1", Time: t0.Add(time.Second), Resolution: 1, Values: []float64{7}},
		{Name: "LagMs", Unit: "Milliseconds", Time: t0, Resolution: 1, Values: []float64{120}},
		{Name: "NoUnit", Unit: "None", Time: t0, Resolution: 1, Values: []float64{3}},
	}}}
	if d := cmp.Diff(want, c.reqs, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Size" }, cmp.Ignore())); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
	if st := w.Stats(); st != (Stats{Datums: 8, Series: 4, Failed: 1, Calls: 1}) {
		t.Errorf("stats = %+v", st)
	}
}

func TestWriteMetricsLimits(t *testing.T) {
	tests := []struct {
		name string
		data func() []results.Datum
		// per request: number of MetricDatums
		wantDatums []int
		wantValues int // total values over all requests
	}{
		{
			name: "2,500 series: 1,000 datums per call",
			data: func() []results.Datum {
				var out []results.Datum
				for i := range 2500 {
					out = append(out, results.Datum{Name: fmt.Sprintf("m%04d", i), Unit: "Count", Time: t0, Value: 1})
				}
				return out
			},
			wantDatums: []int{1000, 1000, 500},
			wantValues: 2500,
		},
		{
			name: "400 distinct values: split into 150, 150, 100",
			data: func() []results.Datum {
				var out []results.Datum
				for i := range 400 {
					out = append(out, results.Datum{Name: "Lag", Unit: "Milliseconds", Time: t0, Value: float64(i)})
				}
				return out
			},
			wantDatums: []int{3},
			wantValues: 400,
		},
		{
			name: "400 series of 150 values: bounded by bytes",
			data: func() []results.Datum {
				var out []results.Datum
				for i := range 400 {
					for v := range 150 {
						out = append(out, results.Datum{Name: fmt.Sprintf("metric-with-a-longish-name-%04d", i), Unit: "Milliseconds",
							Dims: []results.Dim{{Name: "Stream", Value: "clickstream-prod"}, {Name: "Shard", Value: "shardId-000000000001"}},
							Time: t0, Value: float64(v) + 0.5, Count: 3})
					}
				}
				return out
			},
			// ~2,970 estimated bytes per datum against a 900,000 budget.
			wantDatums: []int{303, 97},
			wantValues: 60_000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &capture{}
			w := newCaptured(t, c, Options{})
			if err := w.WriteMetrics(t.Context(), tt.data()); err != nil {
				t.Fatalf("WriteMetrics: %v", err)
			}
			var gotDatums []int
			values := 0
			for _, r := range c.reqs {
				gotDatums = append(gotDatums, len(r.Data))
				if r.Size >= MaxRequestBytes {
					t.Errorf("request of %d bytes exceeds 1 MB", r.Size)
				}
				// The estimate must bound the real size from above.
				if est := estimateRequest(r); r.Size > est {
					t.Errorf("request of %d bytes, estimated %d", r.Size, est)
				}
				for _, d := range r.Data {
					if len(d.Values) > MaxValues || (d.Counts != nil && len(d.Counts) != len(d.Values)) {
						t.Errorf("datum %s: %d values, %d counts", d.Name, len(d.Values), len(d.Counts))
					}
					values += len(d.Values)
				}
			}
			if d := cmp.Diff(tt.wantDatums, gotDatums); d != "" {
				t.Errorf("datums per request (-want +got):\n%s", d)
			}
			if values != tt.wantValues {
				t.Errorf("values sent = %d, want %d", values, tt.wantValues)
			}
		})
	}
}

func TestWriteMetricsFailures(t *testing.T) {
	data := []results.Datum{}
	for i := range 30 {
		data = append(data, results.Datum{Name: fmt.Sprintf("m%02d", i%3), Time: t0, Value: float64(i)})
	}
	tests := []struct {
		name       string
		fail       func(n int, s sent) (int, string)
		maxAtt     int
		wantFailed int
		wantCalls  int
		wantCode   string
	}{
		{name: "throttled then ok", fail: func(n int, _ sent) (int, string) {
			if n <= 2 {
				return 400, "ThrottlingException"
			}
			return 0, ""
		}, wantCalls: 5}, // 3 calls, the first retried twice
		{name: "server error then ok", fail: func(n int, _ sent) (int, string) {
			if n == 1 {
				return 500, "InternalServiceFault"
			}
			return 0, ""
		}, wantCalls: 4},
		{name: "invalid parameter on the second call fails its datums only", fail: func(n int, s sent) (int, string) {
			if s.Data[0].Name == "m01" {
				return 400, "InvalidParameterValueException"
			}
			return 0, ""
		}, wantFailed: 10, wantCalls: 3, wantCode: "InvalidParameterValueException"},
		{name: "throttled until attempts run out", maxAtt: 2, fail: func(int, sent) (int, string) { return 400, "ThrottlingException" },
			wantFailed: 30, wantCalls: 6, wantCode: "ThrottlingException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &capture{fail: tt.fail}
			// One series per call, so failures map to whole series.
			w := newCaptured(t, c, Options{MaxDatums: 1, Retry: retry.Policy{MaxAttempts: tt.maxAtt}})
			err := w.WriteMetrics(t.Context(), data)
			var be *sinks.BatchError
			got := 0
			if errors.As(err, &be) {
				got = len(be.Failed)
				var apiErr smithy.APIError
				if !errors.As(be.Failed[0].Err, &apiErr) || apiErr.ErrorCode() != tt.wantCode {
					t.Errorf("failure %v: want code %s", be.Failed[0].Err, tt.wantCode)
				}
				var names []string
				for _, f := range be.Failed {
					names = append(names, data[f.Index].Name)
				}
				sort.Strings(names)
				if tt.wantFailed == 10 && (names[0] != "m01" || names[9] != "m01") {
					t.Errorf("failed datums %v, want only m01", names)
				}
			} else if err != nil {
				t.Fatalf("err %v is not a BatchError", err)
			}
			if got != tt.wantFailed || len(c.reqs) != tt.wantCalls {
				t.Errorf("failed %d, calls %d; want %d, %d (err %v)", got, len(c.reqs), tt.wantFailed, tt.wantCalls, err)
			}
		})
	}
}

// estimateRequest recomputes the writer's size estimate for a decoded request.
func estimateRequest(r sent) int {
	n := 0
	for _, d := range r.Data {
		n += 128 + len(d.Name) + len(d.Unit) + 18*len(d.Values)
		if d.Dims != "" {
			for _, kv := range strings.Split(d.Dims, ",") {
				n += 24 + len(kv) - 1
			}
		}
	}
	return n
}
