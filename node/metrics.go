package node

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/ingest"
	"github.com/sluicedb/sluice/partition"
)

// logEndsEvery is how often the node lists the committed ends of the ingest
// and changelog topics: the ingest and standby lags are measured against
// them, so a lag may miss records produced in the last interval.
const logEndsEvery = time.Second

// partitionStates are the values of sluice_partition_state's state label:
// a partition's phases as the outside sees them (partition.Phase.String).
// "stopped" also says the registry gives the partition to this node but it
// is not running here (not opened yet, or opening failed).
var partitionStates = []string{partition.RestoreDue.String(), partition.Serving.String(), partition.Closing.String(),
	partition.Deposed.String(), partition.Stopped.String()}

// registerMetrics creates the node's registry: Go and process metrics, the
// partitions' (partition.Metrics), the ingest lag and the gauges read at
// scrape time from the partitions the node holds.
func (n *Node) registerMetrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.metrics = partition.NewMetrics(reg)
	n.ingestLag = ingest.NewLag(n.appliedIngest)
	reg.MustRegister(n.ingestLag, newHeldCollector(n))
	registerReadCache(reg, n.readCache)
	n.failoverMoves = newFailoverMetric(reg)
	return reg
}

// registerReadCache reports the read cache's size and hits at scrape time.
func registerReadCache(reg *prometheus.Registry, rc *partition.ReadCache) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_read_cache_budget_bytes", Help: "The read cache's byte budget (--read-cache); 0: disabled."},
			func() float64 { return float64(rc.Budget()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_read_cache_used_bytes", Help: "Bytes the read cache counts for the entries it holds (keys, values and a fixed overhead each)."},
			func() float64 { return float64(rc.Used()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_read_cache_keys", Help: "Keys the read cache holds."},
			func() float64 { return float64(rc.Keys()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_read_cache_hits_total", Help: "Lookups the read cache answered."},
			func() float64 { return float64(rc.Stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_read_cache_misses_total", Help: "Lookups the read cache did not answer (a store read follows)."},
			func() float64 { return float64(rc.Stats().Misses) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_read_cache_evictions_total", Help: "Entries the read cache dropped to stay within its budget."},
			func() float64 { return float64(rc.Stats().Evictions) }),
	)
}

// appliedIngest merges the applied ingest offsets of the partitions this
// node owns (a deposed one owns nothing).
func (n *Node) appliedIngest() map[int32]int64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make(map[int32]int64)
	for _, h := range n.parts {
		if h.p == nil || h.p.Status().Deposed() {
			continue
		}
		for slot, off := range h.p.AppliedIngest() {
			out[slot] = off
		}
	}
	return out
}

// watchLogEnds lists the committed ends (last stable offsets) of the ingest
// and changelog topics every logEndsEvery until the node stops: consumers
// learn ends from their fetches, but an idle or paused one fetches nothing,
// and a standby that stopped tailing fetches nothing either.
func (n *Node) watchLogEnds() {
	defer n.wg.Done()
	cl, err := kgo.NewClient(n.kafkaOpts()...)
	if err != nil {
		n.cfg.Log.Error().Err(err).Msg("metrics: no Kafka client to list the topics' ends; ingest and standby lags will be stale")
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ingestTopic, changelogTopic := n.topics.Ingest(), n.topics.Changelog()
	stopped, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	go func() {
		select {
		case <-n.stop:
			cancelAll()
		case <-stopped.Done():
		}
	}()
	t := time.NewTicker(logEndsEvery)
	defer t.Stop()
	failing := false
	for {
		ctx, cancel := context.WithTimeout(stopped, 5*logEndsEvery)
		listed, err := adm.ListCommittedOffsets(ctx, n.withoutSkipped(ingestTopic, changelogTopic)...)
		cancel()
		if err == nil {
			err = listed.Error()
		}
		switch {
		case err != nil && !failing:
			failing = true
			n.cfg.Log.Warn().Err(err).Msg("metrics: listing the topics' ends failed; ingest and standby lags are stale until it works again")
		case err == nil:
			failing = false
		}
		ends := map[string]map[int32]int64{}
		listed.Each(func(o kadm.ListedOffset) {
			if o.Err == nil {
				if ends[o.Topic] == nil {
					ends[o.Topic] = make(map[int32]int64)
				}
				ends[o.Topic][o.Partition] = o.Offset
			}
		})
		n.ingestLag.SetEnds(ends[ingestTopic])
		if len(ends[changelogTopic]) > 0 {
			n.changelogEnds.Store(&logEnds{ends: ends[changelogTopic]})
		}
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

// logEnds are a topic's committed ends per slot, as last listed.
type logEnds struct{ ends map[int32]int64 }

// heldCollector reports, at scrape time, the state of every partition the
// registry gives this node and of every partition and standby it holds: a
// gauge set by a partition's loop would go stale exactly when the loop is
// stuck.
type heldCollector struct {
	n                               *Node
	state, waiting                  *prometheus.Desc
	inbox, inboxCap                 *prometheus.Desc
	budgetUsed, budgetLimit         *prometheus.Desc
	nodeBudgetUsed, nodeBudgetLimit *prometheus.Desc
	standbyLag                      *prometheus.Desc
}

func newHeldCollector(n *Node) *heldCollector {
	p := []string{"partition"}
	return &heldCollector{
		n: n,
		state: prometheus.NewDesc("sluice_partition_state",
			"1 for the state each partition this node owns is in (restoring, serving, closing, deposed; stopped: assigned here but not running), 0 for the others.",
			[]string{"partition", "state"}, nil),
		waiting: prometheus.NewDesc("sluice_partition_restore_waiting",
			"1 while a restoring partition waits for what waiting_for names (a slot, an offset), when known; 0 (waiting_for empty) otherwise.",
			[]string{"partition", "waiting_for"}, nil),
		inbox:           prometheus.NewDesc("sluice_partition_inbox_depth", "Requests queued in the partition's inbox.", p, nil),
		inboxCap:        prometheus.NewDesc("sluice_partition_inbox_capacity", "The partition's inbox bound; a full inbox answers RESOURCE_EXHAUSTED.", p, nil),
		budgetUsed:      prometheus.NewDesc("sluice_partition_budget_used_bytes", "Bytes of the requests the partition holds (queued or awaiting their reply).", p, nil),
		budgetLimit:     prometheus.NewDesc("sluice_partition_budget_limit_bytes", "The partition's byte budget (--partition-budget); at it, requests get RESOURCE_EXHAUSTED.", p, nil),
		nodeBudgetUsed:  prometheus.NewDesc("sluice_node_budget_used_bytes", "Bytes of the requests all of the node's partitions hold.", nil, nil),
		nodeBudgetLimit: prometheus.NewDesc("sluice_node_budget_limit_bytes", "The node's byte budget (--node-budget); at it, requests get RESOURCE_EXHAUSTED.", nil, nil),
		standbyLag: prometheus.NewDesc("sluice_standby_lag_records",
			"Changelog offsets (commit markers included) the standby has not applied yet: how far behind the owner its SESSION and EVENTUAL reads are.",
			p, nil),
	}
}

func (c *heldCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.waiting, c.inbox, c.inboxCap, c.budgetUsed, c.budgetLimit, c.nodeBudgetUsed, c.nodeBudgetLimit, c.standbyLag} {
		ch <- d
	}
}

func (c *heldCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.nodeBudgetUsed, float64(n.budget.Used()))
	gauge(c.nodeBudgetLimit, float64(n.budget.Limit()))
	var ends map[int32]int64
	if e := n.changelogEnds.Load(); e != nil {
		ends = e.ends
	}
	states := make(map[uint32]string)
	for _, p := range n.registry.View().Partitions {
		if p.Owner == n.cfg.NodeID {
			states[p.ID] = partition.Stopped.String()
		}
	}
	n.mu.RLock()
	for id, h := range n.parts {
		label := strconv.FormatUint(uint64(id), 10)
		switch {
		case h.p != nil:
			g := h.p.Gauges()
			states[id] = g.State
			if g.Waiting != "" {
				gauge(c.waiting, 1, label, g.Waiting)
			} else {
				gauge(c.waiting, 0, label, "")
			}
			gauge(c.inbox, float64(g.Inbox), label)
			gauge(c.inboxCap, float64(g.InboxCap), label)
			gauge(c.budgetUsed, float64(g.BudgetUsed), label)
			gauge(c.budgetLimit, float64(g.BudgetLimit), label)
		case h.sb != nil && ends != nil:
			gauge(c.standbyLag, float64(h.sb.Behind(ends)), label)
		}
	}
	n.mu.RUnlock()
	for id, st := range states {
		label := strconv.FormatUint(uint64(id), 10)
		for _, s := range partitionStates {
			v := 0.0
			if s == st {
				v = 1
			}
			gauge(c.state, v, label, s)
		}
	}
}
