package ingest

import (
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Lag tells, per slot of the ingest topic, how far a node is behind the
// topic's committed end (its last stable offset; commit markers take offsets
// too). Two figures, because they answer different questions:
//
//   - fetched: records the node's consumers have not read yet. It reaches 0
//     as soon as the records are in the node's memory, seconds before a read
//     sees them.
//   - applied: records whose changes are not yet committed to the changelog
//     and applied to the partition's store. At 0 every record produced so far
//     has been applied: a read sees it.
//
// Lag is a prometheus.Collector: both are computed when scraped, from the
// ends (SetEnds, and every fetch), the consumers' positions and the applied
// offsets the node's partitions publish. A slot is reported only while a
// partition of the node owns it and its end is known.
type Lag struct {
	// applied returns the next ingest offset per slot whose changes the
	// node's partitions have applied to their stores.
	applied func() map[int32]int64

	mu       sync.Mutex
	ends     map[int32]int64    // the topic's committed end per slot
	pos      map[int32]position // each consumed slot's consumer position
	sessions uint64             // consumers started so far

	fetchedDesc, appliedDesc *prometheus.Desc
}

// position is where a slot's consumer is.
type position struct {
	// session is the consumer's: a consumer that ends after its successor
	// of the same slot started (a re-sync) must not touch its position.
	session uint64
	// fetched is the next offset after the last record fetched, commit
	// markers included.
	fetched int64
	// data is the next offset after the last data record handed to the
	// partition (where the consumer started, before any). Offsets from data
	// to fetched are markers only: once the partition has applied up to
	// data, nothing there is left to apply.
	data int64
}

// SlotLag is one slot's figures at one instant; a figure not known is -1.
type SlotLag struct {
	Slot int32
	// End is the topic's committed end.
	End int64
	// Fetched and Applied are the records between End and the consumer's
	// position, and between End and the applied position.
	Fetched, Applied int64
}

// NewLag returns a Lag over the applied offsets the node's partitions
// publish (the next ingest offset per slot they own).
func NewLag(applied func() map[int32]int64) *Lag {
	return &Lag{
		applied: applied,
		ends:    make(map[int32]int64),
		pos:     make(map[int32]position),
		fetchedDesc: prometheus.NewDesc("sluice_ingest_lag_records",
			"Records of the ingest topic (committed end, markers counted) the node's consumer has not fetched yet, per slot. 0 does not mean readable: see sluice_ingest_applied_lag_records.",
			[]string{"slot"}, nil),
		appliedDesc: prometheus.NewDesc("sluice_ingest_applied_lag_records",
			"Records of the ingest topic (committed end, markers counted) whose changes are not yet committed to the changelog and applied to the store, per slot. 0: every record produced so far is readable.",
			[]string{"slot"}, nil),
	}
}

// SetEnds raises the slots' known committed ends. The consumers learn ends
// from their fetches, but an idle consumer, or one paused because its
// partition is busy, fetches nothing: the node also lists the ends
// periodically.
func (l *Lag) SetEnds(ends map[int32]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s, e := range ends {
		l.ends[s] = max(l.ends[s], e)
	}
}

// started records that a consumer starts reading slots at the given
// offsets, and returns its session.
func (l *Lag) started(from map[int32]int64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessions++
	for s, o := range from {
		l.pos[s] = position{session: l.sessions, fetched: o, data: o}
	}
	return l.sessions
}

// stopped forgets session's slots (they may move to another node).
func (l *Lag) stopped(session uint64, from map[int32]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range from {
		if l.pos[s].session == session {
			delete(l.pos, s)
		}
	}
}

// fetch records session's fetch of slot: next is the offset after its last
// record, data the offset after its last data record (-1: markers only), end
// the committed end the broker reported (-1: none).
func (l *Lag) fetch(session uint64, slot int32, next, data, end int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.pos[slot]
	if !ok || p.session != session {
		return // a consumer that has stopped or been replaced
	}
	p.fetched = max(p.fetched, next)
	if data >= 0 {
		p.data = max(p.data, data)
	}
	l.pos[slot] = p
	l.ends[slot] = max(l.ends[slot], end, next)
}

// Slots returns every reported slot's figures, by slot.
func (l *Lag) Slots() []SlotLag {
	applied := l.applied()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]SlotLag, 0, len(applied))
	for _, slot := range slices.Sorted(maps.Keys(applied)) {
		end, ok := l.ends[slot]
		if !ok {
			continue
		}
		s := SlotLag{Slot: slot, End: end, Fetched: -1}
		at := applied[slot]
		if p, ok := l.pos[slot]; ok {
			s.Fetched = max(end-p.fetched, 0)
			if at >= p.data {
				// Everything up to the last data record fetched is applied;
				// what follows up to fetched are commit markers.
				at = max(at, p.fetched)
			}
		}
		s.Applied = max(end-at, 0)
		out = append(out, s)
	}
	return out
}

// Describe implements prometheus.Collector.
func (l *Lag) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.fetchedDesc
	ch <- l.appliedDesc
}

// Collect implements prometheus.Collector.
func (l *Lag) Collect(ch chan<- prometheus.Metric) {
	for _, s := range l.Slots() {
		slot := strconv.Itoa(int(s.Slot))
		if s.Fetched >= 0 {
			ch <- prometheus.MustNewConstMetric(l.fetchedDesc, prometheus.GaugeValue, float64(s.Fetched), slot)
		}
		ch <- prometheus.MustNewConstMetric(l.appliedDesc, prometheus.GaugeValue, float64(s.Applied), slot)
	}
}
