package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

type fakeMetrics struct {
	mu   sync.Mutex
	sent [][]processors.Datum
}

func (f *fakeMetrics) WriteMetrics(_ context.Context, d []processors.Datum) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, append([]processors.Datum(nil), d...))
	return nil
}

func TestReportSendsPeriodTotalsWithStreamDimension(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{cfg: Config{Stream: "clicks"}, log: zap.NewNop(), metrics: m}
	h := chainHooks(processors.Hooks{}, m, &w.counts)
	h.Decoded("s1", 7)
	h.DeadLettered("s1", "decode", 2)
	m.leaseStarted("s1")
	fm := &fakeMetrics{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // report once, at exit
	w.report(ctx, fm, time.Hour)
	if len(fm.sent) != 1 {
		t.Fatalf("sent %d reports; want 1", len(fm.sent))
	}
	got := map[string]float64{}
	for _, d := range fm.sent[0] {
		if len(d.Dims) != 1 || d.Dims[0] != (processors.Dim{Name: "Stream", Value: "clicks"}) {
			t.Errorf("%s dims = %v; want only Stream=clicks", d.Name, d.Dims)
		}
		got[d.Name] = d.Value
	}
	want := map[string]float64{MetricRecordsProcessed: 7, MetricDeadLettered: 2, MetricProcessingErrors: 0, MetricLeasesHeld: 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
}
