package engine

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker's Prometheus series. They also implement the
// engine's MonitoringService, so the engine's own observations (bytes,
// GetRecords time) land in the same registry.
type Metrics struct {
	RecordsIn        *prometheus.CounterVec
	BytesIn          *prometheus.CounterVec
	DecodeErrors     *prometheus.CounterVec
	DeadLettered     *prometheus.CounterVec
	ProcessorSeconds *prometheus.HistogramVec
	LeasesHeld       prometheus.Gauge
	LeaseEvents      *prometheus.CounterVec
	MillisBehind     *prometheus.GaugeVec
	CheckpointAge    *prometheus.GaugeVec
	Checkpoints      *prometheus.CounterVec
	SinkRetries      *prometheus.CounterVec
	ResultsDropped   *prometheus.CounterVec
	GetRecordsSecs   prometheus.Histogram
	// ReadRetries counts Kinesis reads the ReadGuard retried, by
	// operation and error code; KPLMalformed counts aggregates it turned
	// into dead letters.
	ReadRetries  *prometheus.CounterVec
	KPLMalformed prometheus.Counter

	mu       sync.Mutex
	held     map[string]bool
	lastCkpt map[string]time.Time
	now      func() time.Time
}

// NewMetrics registers the worker's series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		RecordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardwatch_records_in_total", Help: "User records read from the stream (after KPL de-aggregation).",
		}, []string{"shard_id"}),
		BytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardwatch_bytes_in_total", Help: "Payload bytes read from the stream.",
		}, []string{"shard_id"}),
		DecodeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardwatch_decode_errors_total", Help: "Records that failed to decode.",
		}, []string{"shard_id"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardwatch_dead_lettered_total", Help: "Records written to the dead-letter sink, by reason class.",
		}, []string{"shard_id", "class"}),
		ProcessorSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shardwatch_processor_seconds", Help: "Time a processor spent on one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}, []string{"processor"}),
		LeasesHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shardwatch_leases_held", Help: "Shard leases this worker holds.",
		}),
		LeaseEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardwatch_lease_events_total", Help: "Lease gains, losses and releases.",
		}, []string{"event"}),
		MillisBehind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shardwatch_millis_behind_latest", Help: "MillisBehindLatest of the shard's last GetRecords.",
		}, []string{"shard_id"}),
		CheckpointAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shardwatch_checkpoint_age_seconds", Help: "Seconds since the shard's last successful checkpoint.",
		}, []string{"shard_id"}),
		Checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardwatch_checkpoints_total", Help: "Successful checkpoints.",
		}, []string{"shard_id"}),
		SinkRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardwatch_sink_retries_total", Help: "Failed sink writes that were retried.",
		}, []string{"sink"}),
		ResultsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardwatch_results_dropped_total", Help: "Results a sink rejected as permanently invalid (a processor bug).",
		}, []string{"sink"}),
		GetRecordsSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shardwatch_getrecords_seconds", Help: "GetRecords latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 8),
		}),
		ReadRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shardwatch_kinesis_read_retries_total", Help: "Throttled or failed GetRecords/GetShardIterator calls retried inside the client.",
		}, []string{"op", "code"}),
		KPLMalformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shardwatch_kpl_malformed_total", Help: "Malformed KPL aggregates dead-lettered whole instead of dropping their batch.",
		}),
		held:     map[string]bool{},
		lastCkpt: map[string]time.Time{},
		now:      time.Now,
	}
	for _, c := range []prometheus.Collector{m.RecordsIn, m.BytesIn, m.DecodeErrors, m.DeadLettered, m.ProcessorSeconds,
		m.LeasesHeld, m.LeaseEvents, m.MillisBehind, m.CheckpointAge, m.Checkpoints, m.SinkRetries, m.ResultsDropped, m.GetRecordsSecs, m.ReadRetries, m.KPLMalformed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Held returns the shards whose leases this worker holds now.
func (m *Metrics) Held() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.held))
	for id := range m.held {
		out = append(out, id)
	}
	return out
}

// UpdateCheckpointAge refreshes the checkpoint-age gauges (call before a scrape).
func (m *Metrics) UpdateCheckpointAge() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for id, t := range m.lastCkpt {
		m.CheckpointAge.WithLabelValues(id).Set(now.Sub(t).Seconds())
	}
}

func (m *Metrics) leaseStarted(shard string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.held[shard] {
		m.held[shard] = true
		m.LeasesHeld.Set(float64(len(m.held)))
	}
	m.lastCkpt[shard] = m.now()
	m.LeaseEvents.WithLabelValues("started").Inc()
}

func (m *Metrics) leaseEnded(shard string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.held, shard)
	delete(m.lastCkpt, shard)
	m.CheckpointAge.DeleteLabelValues(shard)
	m.MillisBehind.DeleteLabelValues(shard)
	m.LeasesHeld.Set(float64(len(m.held)))
}

func (m *Metrics) leaseLost(shard string) {
	m.leaseEnded(shard)
	m.LeaseEvents.WithLabelValues("lost").Inc()
}

func (m *Metrics) recordsIn(shard string, n int) { m.RecordsIn.WithLabelValues(shard).Add(float64(n)) }

func (m *Metrics) behind(shard string, ms int64) {
	m.MillisBehind.WithLabelValues(shard).Set(float64(ms))
}

func (m *Metrics) checkpointed(shard string, _ time.Duration) {
	m.mu.Lock()
	m.lastCkpt[shard] = m.now()
	m.mu.Unlock()
	m.Checkpoints.WithLabelValues(shard).Inc()
}

// monitoring implements the engine's metrics.MonitoringService.
type monitoring struct{ m *Metrics }

func (monitoring) Init(_, _, _ string) error        { return nil }
func (monitoring) Start() error                     { return nil }
func (monitoring) Shutdown()                        {}
func (monitoring) IncrRecordsProcessed(string, int) {}
func (o monitoring) IncrBytesProcessed(shard string, n int64) {
	o.m.BytesIn.WithLabelValues(shard).Add(float64(n))
}
func (monitoring) MillisBehindLatest(string, float64)          {}
func (monitoring) DeleteMetricMillisBehindLatest(string)       {}
func (o monitoring) LeaseGained(string)                        { o.m.LeaseEvents.WithLabelValues("gained").Inc() }
func (o monitoring) LeaseLost(string)                          { o.m.LeaseEvents.WithLabelValues("released").Inc() }
func (monitoring) LeaseRenewed(string)                         {}
func (o monitoring) RecordGetRecordsTime(_ string, ms float64) { o.m.GetRecordsSecs.Observe(ms / 1000) }
func (monitoring) RecordProcessRecordsTime(string, float64)    {}
