package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
	"github.com/shardwatch/shardwatch/pkg/sinks/internal/metricagg"
	"github.com/shardwatch/shardwatch/pkg/sinks/retry"
)

// PutMetricData limits.
const (
	DefaultNamespace = "Shardwatch"
	// MaxDatums is the most MetricDatum entries one call may carry.
	MaxDatums = 1000
	// MaxValues is the most distinct values one MetricDatum may carry.
	MaxValues = 150
	// MaxRequestBytes is the request size limit (1 MB).
	MaxRequestBytes = 1_000_000
	// DefaultMaxBytes is the budget for the estimated size of one request,
	// below MaxRequestBytes so the estimate's error cannot cross it.
	DefaultMaxBytes = 900_000
)

// API is the CloudWatch call the Writer makes.
type API interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Options configures a Writer.
type Options struct {
	// Namespace defaults to "Shardwatch".
	Namespace string
	// Retry governs retries of throttled or failed calls (zero value:
	// retry.Policy's defaults, 8 attempts).
	Retry retry.Policy
	// MaxDatums, MaxValues and MaxBytes bound one request (defaults 1000,
	// 150 and 900,000 estimated bytes); lower them only in tests.
	MaxDatums, MaxValues, MaxBytes int
	// Logger gets one debug line per retried call; default no-op.
	Logger *zap.Logger
}

// Stats are running totals since the writer was built.
type Stats struct {
	Datums  uint64 // datums passed to WriteMetrics
	Series  uint64 // (name, unit, dims, second) series after aggregation
	Failed  uint64 // datums reported in a BatchError
	Calls   uint64 // PutMetricData calls
	Retries uint64 // calls repeated after a transient failure
}

// Writer implements processors.MetricWriter with PutMetricData. Datums are
// aggregated per (name, unit, dimensions, second) into Values/Counts with
// StorageResolution 1 (high resolution) and sent in as few calls as the
// limits allow. It is safe for concurrent use.
type Writer struct {
	api  API
	opts Options
	pool sync.Pool // *metricagg.Aggregator

	datums, series, failed, calls, retries atomic.Uint64
}

// New returns a Writer calling api.
func New(api API, opts Options) (*Writer, error) {
	if api == nil {
		return nil, errors.New("cloudwatch writer: nil client")
	}
	if err := opts.Retry.Validate(); err != nil {
		return nil, err
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	switch {
	case opts.MaxDatums < 0 || opts.MaxDatums > MaxDatums:
		return nil, fmt.Errorf("cloudwatch writer: max datums %d not in [1, %d]", opts.MaxDatums, MaxDatums)
	case opts.MaxValues < 0 || opts.MaxValues > MaxValues:
		return nil, fmt.Errorf("cloudwatch writer: max values %d not in [1, %d]", opts.MaxValues, MaxValues)
	case opts.MaxBytes < 0 || opts.MaxBytes > MaxRequestBytes:
		return nil, fmt.Errorf("cloudwatch writer: max bytes %d not in [1, %d]", opts.MaxBytes, MaxRequestBytes)
	}
	if opts.MaxDatums == 0 {
		opts.MaxDatums = MaxDatums
	}
	if opts.MaxValues == 0 {
		opts.MaxValues = MaxValues
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	w := &Writer{api: api, opts: opts}
	w.pool.New = func() any { return new(metricagg.Aggregator) }
	return w, nil
}

// Stats returns the running totals.
func (w *Writer) Stats() Stats {
	return Stats{Datums: w.datums.Load(), Series: w.series.Load(), Failed: w.failed.Load(),
		Calls: w.calls.Load(), Retries: w.retries.Load()}
}

// WriteMetrics aggregates data and writes it. On failure the error wraps a
// *sinks.BatchError naming every input datum whose series was in a failed
// call (or that was invalid).
func (w *Writer) WriteMetrics(ctx context.Context, data []results.Datum) error {
	if len(data) == 0 {
		return nil
	}
	w.datums.Add(uint64(len(data)))
	agg := w.pool.Get().(*metricagg.Aggregator)
	defer func() {
		agg.Reset()
		w.pool.Put(agg)
	}()
	failed := agg.Add(data)
	w.series.Add(uint64(len(agg.Series)))

	ar := newArena(agg.Series, w.opts.MaxValues)
	req := &cloudwatch.PutMetricDataInput{Namespace: aws.String(w.opts.Namespace)}
	var members []int32 // series in req (a series split over calls repeats)
	size := 0
	flush := func() {
		if len(req.MetricData) == 0 {
			return
		}
		if err := w.put(ctx, req); err != nil {
			for _, si := range members {
				agg.Series[si].Err = err
			}
		}
		req = &cloudwatch.PutMetricDataInput{Namespace: aws.String(w.opts.Namespace)}
		members, size = members[:0], 0
	}
	for si := range agg.Series {
		s := &agg.Series[si]
		for off := 0; off < len(s.Values); off += w.opts.MaxValues {
			end := min(off+w.opts.MaxValues, len(s.Values))
			d := w.datum(s, off, end, ar)
			n := estimate(s, off, end)
			if len(req.MetricData) == w.opts.MaxDatums || size+n > w.opts.MaxBytes {
				flush()
			}
			req.MetricData = append(req.MetricData, d)
			members = append(members, int32(si))
			size += n
		}
	}
	flush()
	failed = append(failed, agg.Failures(data)...)
	w.failed.Add(uint64(len(failed)))
	return sinks.NewBatchError("cloudwatch put metric data", len(data), failed)
}

// highResolution is shared by every datum: the SDK only reads it.
var highResolution = aws.Int32(1)

// datum builds one MetricDatum. Its pointers point into s and into the
// call's arena, which live until the request is sent, saving an
// allocation per field.
func (w *Writer) datum(s *metricagg.Series, off, end int, ar *arena) types.MetricDatum {
	ar.times = append(ar.times, time.Unix(s.Second, 0))
	d := types.MetricDatum{
		MetricName:        &s.Name,
		Unit:              types.StandardUnit(s.Unit),
		Timestamp:         &ar.times[len(ar.times)-1],
		StorageResolution: highResolution,
		Values:            s.Values[off:end:end],
	}
	// Counts default to 1: leave them out when all are 1 (halves the size
	// of unweighted series).
	for _, c := range s.Counts[off:end] {
		if c != 1 {
			d.Counts = s.Counts[off:end:end]
			break
		}
	}
	if len(s.Dims) > 0 {
		start := len(ar.dims)
		for i := range s.Dims {
			ar.dims = append(ar.dims, types.Dimension{Name: &s.Dims[i].Name, Value: &s.Dims[i].Value})
		}
		d.Dimensions = ar.dims[start:len(ar.dims):len(ar.dims)]
	}
	return d
}

// arena holds the timestamps and dimensions of one call's datums. Its
// slices are sized up front and never grow, so pointers into them stay
// valid.
type arena struct {
	times []time.Time
	dims  []types.Dimension
}

func newArena(series []metricagg.Series, maxValues int) *arena {
	datums, dims := 0, 0
	for i := range series {
		n := (len(series[i].Values) + maxValues - 1) / maxValues
		datums += n
		dims += n * len(series[i].Dims)
	}
	return &arena{times: make([]time.Time, 0, datums), dims: make([]types.Dimension, 0, dims)}
}

// estimate bounds the CBOR size of one MetricDatum from above: member
// names and headers, strings, and 9 bytes per float64 value and count.
func estimate(s *metricagg.Series, off, end int) int {
	n := 128 + len(s.Name) + len(s.Unit) + 18*(end-off)
	for _, dm := range s.Dims {
		n += 24 + len(dm.Name) + len(dm.Value)
	}
	return n
}

func (w *Writer) put(ctx context.Context, req *cloudwatch.PutMetricDataInput) error {
	attempt := 0
	err := w.opts.Retry.Do(ctx, sinks.IsRetryable, func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			w.retries.Add(1)
			w.opts.Logger.Debug("cloudwatch put metric data retry", zap.String("sink", "cloudwatch"), zap.Int("attempt", attempt))
		}
		w.calls.Add(1)
		_, err := w.api.PutMetricData(ctx, req)
		return err
	})
	if err != nil {
		return fmt.Errorf("put metric data (%d datums): %w", len(req.MetricData), err)
	}
	return nil
}
