package partition

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the partitions' Prometheus metrics, labelled by partition id.
// A nil *Metrics records nothing.
type Metrics struct {
	inbox          *prometheus.GaugeVec
	window         *prometheus.GaugeVec
	appendLatency  *prometheus.HistogramVec
	applyLatency   *prometheus.HistogramVec
	txnRecords     *prometheus.HistogramVec
	restoreRecords *prometheus.CounterVec
	restoreLag     *prometheus.GaugeVec
	dlq            *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	l := []string{"partition"}
	m := &Metrics{
		inbox:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_partition_inbox_depth", Help: "Requests queued in the partition's inbox."}, l),
		window: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_partition_window", Help: "Results held by the line monitor until their transaction commits."}, l),
		appendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_changelog_append_seconds", Help: "Time to append and commit one group (one Kafka transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, l),
		applyLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_store_apply_seconds", Help: "Time to write one committed group to the store (on the partition's goroutine).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, l),
		txnRecords: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_changelog_transaction_records", Help: "Change records per Kafka transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, l),
		restoreRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_restore_records_total", Help: "Changelog records replayed while restoring."}, l),
		restoreLag:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_restore_lag_records", Help: "Changelog offsets left to replay before the partition serves."}, l),
		dlq:            prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_ingest_dlq_total", Help: "Ingest records sent to the dead-letter topic."}, l),
	}
	reg.MustRegister(m.inbox, m.window, m.appendLatency, m.applyLatency, m.txnRecords, m.restoreRecords, m.restoreLag, m.dlq)
	return m
}

// partitionMetrics are one partition's resolved series, looked up once so the
// loop does no label hashing per request. A nil one records nothing.
type partitionMetrics struct {
	inbox, window, restoreLag prometheus.Gauge
	appendLatency, txnRecords prometheus.Observer
	applyLatency              prometheus.Observer
	restoreRecords, dlq       prometheus.Counter
}

func (m *Metrics) forPartition(id uint32) *partitionMetrics {
	if m == nil {
		return nil
	}
	l := strconv.FormatUint(uint64(id), 10)
	return &partitionMetrics{
		inbox: m.inbox.WithLabelValues(l), window: m.window.WithLabelValues(l), restoreLag: m.restoreLag.WithLabelValues(l),
		appendLatency: m.appendLatency.WithLabelValues(l), applyLatency: m.applyLatency.WithLabelValues(l), txnRecords: m.txnRecords.WithLabelValues(l),
		restoreRecords: m.restoreRecords.WithLabelValues(l), dlq: m.dlq.WithLabelValues(l),
	}
}

func (m *partitionMetrics) observe(p *Partition) {
	if m == nil {
		return
	}
	m.inbox.Set(float64(len(p.inbox)))
	m.window.Set(float64(p.loop.core.Held()))
}

func (m *partitionMetrics) appended(r appendResult) {
	if m == nil || r.err != nil {
		return
	}
	m.appendLatency.Observe(r.took.Seconds())
	m.txnRecords.Observe(float64(r.records))
	m.dlq.Add(float64(r.dlq))
}

func (m *partitionMetrics) applied(took time.Duration) {
	if m == nil {
		return
	}
	m.applyLatency.Observe(took.Seconds())
}

func (m *partitionMetrics) restored(records int, lag int64) {
	if m == nil {
		return
	}
	m.restoreRecords.Add(float64(records))
	m.restoreLag.Set(float64(lag))
}
