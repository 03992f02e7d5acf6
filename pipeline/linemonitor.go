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

// FailAll releases every held result, in order, with the error errFor gives
// for its group.
func (m *LineMonitor) FailAll(errFor func(group uint64) error) {
	for m.head < len(m.queue) {
		h := m.queue[m.head]
		m.queue[m.head] = held{}
		m.head++
		h.release(errFor(h.group))
	}
	m.queue, m.head = m.queue[:0], 0
}

// FailFrom releases with err every held result of group from on. They are
// the queue's tail, since groups only grow.
func (m *LineMonitor) FailFrom(from uint64, err error) {
	i := len(m.queue)
	for i > m.head && m.queue[i-1].group >= from {
		i--
	}
	for j := i; j < len(m.queue); j++ {
		m.queue[j].release(err)
		m.queue[j] = held{}
	}
	m.queue = m.queue[:i]
}

// Len is the number of held results: the window's size.
func (m *LineMonitor) Len() int { return len(m.queue) - m.head }

// Full reports whether the window is at its limit; the partition stops taking
// requests until it drains.
func (m *LineMonitor) Full() bool { return m.Len() >= m.limit }
