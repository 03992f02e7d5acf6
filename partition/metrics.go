package partition

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the partitions' Prometheus metrics that their loops update,
// labelled by partition id. What is read at scrape time instead (state,
// inbox, budgets, standby lag) a node gathers with Partition.Gauges and
// Standby.Behind. A nil *Metrics records nothing.
type Metrics struct {
	window         *prometheus.GaugeVec
	appendLatency  *prometheus.HistogramVec
	applyLatency   *prometheus.HistogramVec
	txnRecords     *prometheus.HistogramVec
	restoreRecords *prometheus.CounterVec
	restoreLag     *prometheus.GaugeVec
	restoreTime    prometheus.Histogram // node-wide: restores are rare, per-partition buckets would be most of a scrape
	fenceTime      prometheus.Histogram
	dlq            *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	l := []string{"partition"}
	m := &Metrics{
		window: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_partition_window", Help: "Results held by the line monitor until their transaction commits."}, l),
		appendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_changelog_append_seconds", Help: "Time to append and commit one group (one Kafka transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, l),
		applyLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_store_apply_seconds", Help: "Time to write one committed group to the store (on the partition's goroutine).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, l),
		txnRecords: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_changelog_transaction_records", Help: "Change records per Kafka transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, l),
		restoreRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_restore_records_total", Help: "Changelog records replayed while restoring."}, l),
		restoreLag:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_restore_lag_records", Help: "Changelog offsets left to replay before the partition serves."}, l),
		restoreTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_restore_seconds",
			Help:    "Time from the start of a partition's restore until it serves: fencing, snapshot load, replay and lease wait. A partition's first restore is its restart-to-serve. Per partition: the \"serving\" log line.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}),
		fenceTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_fence_seconds",
			Help:    "Time a restore took to fence every older writer of the partition's slots and its own transactional id. Per partition: the \"fenced\" log line.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_ingest_dlq_total", Help: "Ingest records sent to the dead-letter topic."}, l),
	}
	reg.MustRegister(m.window, m.appendLatency, m.applyLatency, m.txnRecords, m.restoreRecords, m.restoreLag, m.restoreTime, m.fenceTime, m.dlq)
	return m
}

// partitionMetrics are one partition's resolved series, looked up once so the
// loop does no label hashing per request. A nil one records nothing.
type partitionMetrics struct {
	window, restoreLag        prometheus.Gauge
	appendLatency, txnRecords prometheus.Observer
	applyLatency              prometheus.Observer
	restoreTime, fenceTime    prometheus.Observer
	restoreRecords, dlq       prometheus.Counter
}

func (m *Metrics) forPartition(id uint32) *partitionMetrics {
	if m == nil {
		return nil
	}
	l := strconv.FormatUint(uint64(id), 10)
	return &partitionMetrics{
		window: m.window.WithLabelValues(l), restoreLag: m.restoreLag.WithLabelValues(l),
		appendLatency: m.appendLatency.WithLabelValues(l), applyLatency: m.applyLatency.WithLabelValues(l), txnRecords: m.txnRecords.WithLabelValues(l),
		restoreTime: m.restoreTime, fenceTime: m.fenceTime,
		restoreRecords: m.restoreRecords.WithLabelValues(l), dlq: m.dlq.WithLabelValues(l),
	}
}

func (m *partitionMetrics) observe(p *Partition) {
	if m == nil {
		return
	}
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

func (m *partitionMetrics) fenced(took time.Duration) {
	if m == nil {
		return
	}
	m.fenceTime.Observe(took.Seconds())
}

func (m *partitionMetrics) served(restoreTook time.Duration) {
	if m == nil {
		return
	}
	m.restoreTime.Observe(restoreTook.Seconds())
}

// Gauges is a partition's state at one instant, read when metrics are
// scraped (a gauge the loop set would go stale exactly when the loop is
// stuck, which is when an operator looks).
type Gauges struct {
	// State is restoring, serving, closing, deposed or stopped.
	State string
	// Waiting is what a restoring partition waits for, if known.
	Waiting string
	// Inbox is the requests queued; InboxCap its bound.
	Inbox, InboxCap int
	// BudgetUsed are the bytes of the requests the partition holds (queued
	// or awaiting their reply); BudgetLimit its bound.
	BudgetUsed, BudgetLimit int64
}

// Gauges reads the partition's gauges. Safe from any goroutine.
func (p *Partition) Gauges() Gauges {
	st := p.state.load()
	g := Gauges{State: st.Phase.String(), Inbox: len(p.inbox), InboxCap: cap(p.inbox), BudgetUsed: p.budget.Used(), BudgetLimit: p.budget.Limit()}
	if st.Phase.Restoring() {
		g.Waiting = st.Waiting
	}
	return g
}
