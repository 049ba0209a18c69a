package cloudwatch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks/internal/metricagg"
)

type nopCW struct{ datums int }

func (n *nopCW) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	n.datums += len(in.MetricData)
	return &cloudwatch.PutMetricDataOutput{}, nil
}

// benchData is one batch of a busy shard: 2,000 datums over 10 metrics x 4
// status classes x 5 seconds, values from a small set (counts) as the
// per-second metrics processor emits them.
func benchData() []results.Datum {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	var out []results.Datum
	for i := range 2000 {
		out = append(out, results.Datum{
			Name: fmt.Sprintf("metric%d", i%10), Unit: "Count",
			Dims: []results.Dim{{Name: "Status", Value: fmt.Sprintf("%dxx", 2+(i/10)%4)}, {Name: "Stream", Value: "clicks"}},
			Time: t0.Add(time.Duration((i/40)%5) * time.Second), Value: float64(i % 7),
		})
	}
	return out
}

// BenchmarkAggregate is the aggregation alone.
func BenchmarkAggregate(b *testing.B) {
	data := benchData()
	var agg metricagg.Aggregator
	b.ReportAllocs()
	for b.Loop() {
		agg.Reset()
		agg.Add(data)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(data)), "ns/datum")
}

// BenchmarkWriteMetrics is aggregation plus building the requests, against
// a client that returns at once (serialisation is the SDK's).
func BenchmarkWriteMetrics(b *testing.B) {
	data := benchData()
	api := &nopCW{}
	w, err := New(api, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteMetrics(b.Context(), data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(data)), "ns/datum")
	if api.datums/b.N != 200 {
		b.Fatalf("%d datums per call, want 200 series", api.datums/b.N)
	}
}
