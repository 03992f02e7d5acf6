package core

// lineMonitor releases replies strictly in the order they were held, each
// only once the append group it depends on has committed. It is the moving
// window over sequence numbers of DESIGN.md: group numbers only grow, so the
// held replies form a queue whose head is always the next to release.
type lineMonitor struct {
	queue []held
	head  int
	limit int
}

// held is a reply waiting for group to commit. A write's reply takes, at
// release, the position of each of its records: Results[j] is that of
// g.Records[recs[j]] (-1: an entry a stage dropped, Offset -1).
type held struct {
	group uint64
	reply Reply
	g     *Group
	recs  []int
}

// hold queues h. Groups of successive holds never decrease.
func (m *lineMonitor) hold(h held) {
	if m.head > 0 && m.head == len(m.queue) {
		m.queue, m.head = m.queue[:0], 0
	}
	m.queue = append(m.queue, h)
}

// commit releases, in order, every held reply whose group is at most group.
func (m *lineMonitor) commit(group uint64, out func(held)) {
	for m.head < len(m.queue) && m.queue[m.head].group <= group {
		h := m.queue[m.head]
		m.queue[m.head] = held{}
		m.head++
		out(h)
	}
}

// fail releases, in order, every held reply of group from on with the error
// errFor gives for its group. They are the queue's tail, since groups only grow.
func (m *lineMonitor) fail(from uint64, errFor func(group uint64) error, out func(held)) {
	i := len(m.queue)
	for i > m.head && m.queue[i-1].group >= from {
		i--
	}
	for j := i; j < len(m.queue); j++ {
		h := m.queue[j]
		h.reply, h.recs = Reply{Handle: h.reply.Handle, Err: errFor(h.group)}, nil
		m.queue[j] = held{}
		out(h)
	}
	m.queue = m.queue[:i]
	if m.head == len(m.queue) {
		m.queue, m.head = m.queue[:0], 0
	}
}

// len is the number of held replies: the window's size.
func (m *lineMonitor) len() int { return len(m.queue) - m.head }

// full reports whether the window is at its limit: the partition stops taking
// requests until it drains.
func (m *lineMonitor) full() bool { return m.len() >= m.limit }
