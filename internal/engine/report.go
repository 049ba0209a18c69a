package engine

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors"
)

// Worker-level CloudWatch metrics (deploy/ecs/METRICS.md): sent once a
// period through the same metric sink as the processors' datums, with only
// the Stream dimension, so alarms see one series per stream.
const (
	MetricRecordsProcessed = "RecordsProcessed"
	MetricProcessingErrors = "ProcessingErrors"
	MetricDeadLettered     = "DeadLettered"
	MetricLeasesHeld       = "LeasesHeld"
)

// counts are the running totals the reporter turns into per-period sums.
type counts struct {
	records, errors, deadLettered atomic.Int64
}

// report sends the worker's totals since the last report, and the leases
// it holds now, every period until ctx ends (then once more).
func (w *Worker) report(ctx context.Context, mw processors.MetricWriter, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	var last [3]int64
	send := func(now time.Time) {
		cur := [3]int64{w.counts.records.Load(), w.counts.errors.Load(), w.counts.deadLettered.Load()}
		dims := []processors.Dim{{Name: "Stream", Value: w.cfg.Stream}}
		ts := now.Truncate(time.Second)
		data := []processors.Datum{
			{Name: MetricRecordsProcessed, Unit: "Count", Dims: dims, Time: ts, Value: float64(cur[0] - last[0]), Count: 1},
			{Name: MetricProcessingErrors, Unit: "Count", Dims: dims, Time: ts, Value: float64(cur[1] - last[1]), Count: 1},
			{Name: MetricDeadLettered, Unit: "Count", Dims: dims, Time: ts, Value: float64(cur[2] - last[2]), Count: 1},
			{Name: MetricLeasesHeld, Unit: "Count", Dims: dims, Time: ts, Value: float64(len(w.metrics.Held())), Count: 1},
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := mw.WriteMetrics(wctx, data); err != nil {
			// Metrics are best effort: the next period carries the totals.
			w.log.Warn("worker metrics not sent", zap.Error(err))
			return
		}
		last = cur
	}
	for {
		select {
		case <-ctx.Done():
			send(time.Now())
			return
		case now := <-t.C:
			send(now)
		}
	}
}
