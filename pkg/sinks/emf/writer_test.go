package emf

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 22, 9, 41, 7, 0, time.UTC)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s (-want +got):\n%s", path, d)
	}
}

func TestGolden(t *testing.T) {
	var out bytes.Buffer
	w, err := New(&out, Options{Namespace: "Shardwatch/Test"})
	if err != nil {
		t.Fatal(err)
	}
	edge := []results.Dim{{Name: "Stream", Value: "clicks"}, {Name: "Edge", Value: "FRA53"}}
	data := []results.Datum{
		{Name: "Requests", Unit: "Count", Dims: edge, Time: t0, Value: 1},
		{Name: "Requests", Unit: "Count", Dims: edge, Time: t0.Add(500 * time.Millisecond), Value: 1},
		{Name: "Bytes", Unit: "Bytes", Dims: edge, Time: t0, Value: 5120},
		{Name: "Requests", Unit: "Count", Dims: edge, Time: t0.Add(time.Second), Value: 4},
		// Mean lag 150 ms over 3 records: three samples of 150.
		{Name: "LagMs", Unit: "Milliseconds", Time: t0, Value: 450, Count: 3},
		{Name: "BotShare", Unit: "Percent", Dims: []results.Dim{{Name: "Stream", Value: "clicks \"main\"\n"}}, Time: t0, Value: 12.5},
		{Name: "Stream", Unit: "Count", Dims: edge, Time: t0, Value: 1}, // collides with a dimension
		{Name: "Broken", Time: t0, Value: math.Inf(1)},
	}
	err = w.WriteMetrics(t.Context(), data)
	var be *sinks.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 2 || be.Failed[0].Index != 6 || be.Failed[1].Index != 7 {
		t.Fatalf("err = %v, want failures at 6 and 7", err)
	}
	golden(t, "basic.golden", out.Bytes())
	// Every line is a JSON object with the EMF metadata.
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var v struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct{ Namespace string }
			} `json:"_aws"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil || v.AWS.Timestamp == 0 || v.AWS.CloudWatchMetrics[0].Namespace != "Shardwatch/Test" {
			t.Errorf("line %q: %v", line, err)
		}
	}
	if st := w.Stats(); st != (Stats{Datums: 8, Lines: 4, Failed: 2}) {
		t.Errorf("stats = %+v", st)
	}
}

func TestLineLimits(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		data        []results.Datum
		wantLines   int
		wantMetrics []int // metrics per line
		wantValues  int   // values over all lines
		approx      uint64
	}{
		{
			name: "250 metrics: 100 per line",
			data: func() []results.Datum {
				var out []results.Datum
				for i := range 250 {
					out = append(out, results.Datum{Name: fmt.Sprintf("m%03d", i), Unit: "Count", Time: t0, Value: float64(i)})
				}
				return out
			}(),
			wantMetrics: []int{100, 100, 50},
			wantValues:  250,
		},
		{
			name: "250 observations of one metric: 100 values per line",
			data: func() []results.Datum {
				var out []results.Datum
				for i := range 250 {
					out = append(out, results.Datum{Name: "Lag", Unit: "Milliseconds", Time: t0, Value: float64(i % 7)})
				}
				return out
			}(),
			wantMetrics: []int{1, 1, 1},
			wantValues:  250,
		},
		{
			name:        "count beyond MaxSamples is scaled",
			opts:        Options{MaxSamples: 200},
			data:        []results.Datum{{Name: "Requests", Unit: "Count", Time: t0, Value: 1000, Count: 1000}, {Name: "Requests", Unit: "Count", Time: t0, Value: 2, Count: 0}},
			wantMetrics: []int{1, 1, 1},
			wantValues:  200, // 1000 ones scaled to 200, plus the single 2
			approx:      1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w, err := New(&out, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteMetrics(t.Context(), tt.data); err != nil {
				t.Fatal(err)
			}
			var metrics []int
			values := 0
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var m map[string]json.RawMessage
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("bad line %q: %v", line, err)
				}
				metrics = append(metrics, len(m)-1)
				for k, raw := range m {
					if k == "_aws" {
						continue
					}
					var arr []float64
					if json.Unmarshal(raw, &arr) == nil {
						if len(arr) > MaxLineValues {
							t.Errorf("metric %s has %d values in one line", k, len(arr))
						}
						values += len(arr)
					} else {
						values++
					}
				}
			}
			if d := cmp.Diff(tt.wantMetrics, metrics); d != "" {
				t.Errorf("metrics per line (-want +got):\n%s", d)
			}
			if tt.approx == 0 && values != tt.wantValues {
				t.Errorf("values = %d, want %d", values, tt.wantValues)
			}
			if tt.approx != 0 && (values < tt.wantValues || values > tt.wantValues+1) {
				t.Errorf("values = %d, want about %d", values, tt.wantValues)
			}
			if got := w.Stats().Approximated; got != tt.approx {
				t.Errorf("approximated = %d, want %d", got, tt.approx)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	w, err := New(failingWriter{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = w.WriteMetrics(t.Context(), []results.Datum{{Name: "a", Time: t0, Value: 1}, {Name: "b", Time: t0, Value: 1}})
	var be *sinks.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 2 {
		t.Fatalf("err = %v, want both datums failed", err)
	}
}
