package pipeline

// LineMonitor releases results strictly in the order they were held, each only
// once the append group it depends on has committed. It is the moving window
// over sequence numbers of DESIGN.md: group numbers only grow, so the held
// results form a queue whose head is always the next to release.
//
// Not safe for concurrent use: the partition goroutine owns it.
type LineMonitor struct {
	queue []held
	head  int
	limit int
}

type held struct {
	group   uint64
	release func(err error)
}

// NewLineMonitor returns a monitor that reports Full at limit held results.
func NewLineMonitor(limit int) *LineMonitor { return &LineMonitor{limit: limit} }

// Hold queues release to run once group has committed. Group numbers passed to
// Hold never decrease.
func (m *LineMonitor) Hold(group uint64, release func(err error)) {
	if m.head > 0 && m.head == len(m.queue) {
		m.queue, m.head = m.queue[:0], 0
	}
	m.queue = append(m.queue, held{group, release})
}

// Commit releases, in order, every held result whose group is at most group.
func (m *LineMonitor) Commit(group uint64) {
	for m.head < len(m.queue) && m.queue[m.head].group <= group {
		h := m.queue[m.head]
		m.queue[m.head] = held{}
		m.head++
		h.release(nil)
	}
}

// FailAll releases every held result with err, in order.
func (m *LineMonitor) FailAll(err error) {
	for m.head < len(m.queue) {
		h := m.queue[m.head]
		m.queue[m.head] = held{}
		m.head++
		h.release(err)
	}
	m.queue, m.head = m.queue[:0], 0
}

// Len is the number of held results: the window's size.
func (m *LineMonitor) Len() int { return len(m.queue) - m.head }

// Full reports whether the window is at its limit; the partition stops taking
// requests until it drains.
func (m *LineMonitor) Full() bool { return m.Len() >= m.limit }
