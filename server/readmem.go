package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
)

// ReadMemory bounds the bytes of read responses (Get, GetMany, Scan, Watch)
// that a node holds at once, across all calls: a read takes its share
// before it reads (the most its response can hold, given back down to what
// it holds once read), and gives it back once the response is sent: a
// unary call's when the call ends (its stats End, after gRPC has written
// the response to the connection), a stream's message when the next Send
// returns (gRPC's per-stream write quota has then let it go) or the stream
// ends. A read that cannot get its share within a short wait answers
// RESOURCE_EXHAUSTED naming the limit: ask again. Installed as the data
// port's stats handler, it gives back at each call's end what the call
// still holds. A nil *ReadMemory bounds nothing.
type ReadMemory struct {
	sem   *semaphore.Weighted
	limit int64
	wait  time.Duration
	// sending maps a response handed to the codec (sendHeld) to its hold.
	sending sync.Map
}

const (
	// DefaultReadMemory is a node's bound on read response bytes in flight
	// (--read-memory): 512 MiB, room for its 64 watches' messages (3 MiB
	// each, held for a watch's life) and as much again for other reads.
	// Unbounded, 256 concurrent GetMany calls of 3 MB responses took a
	// node's RSS to 1.92 GB.
	DefaultReadMemory = 512 << 20
	// readMemoryWait is how long a read waits for its share.
	readMemoryWait = 2 * time.Second
)

// NewReadMemory bounds read responses to limit bytes at once.
func NewReadMemory(limit int64) *ReadMemory {
	return &ReadMemory{sem: semaphore.NewWeighted(limit), limit: limit, wait: readMemoryWait}
}

// Limit is the bound in bytes.
func (m *ReadMemory) Limit() int64 { return m.limit }

type holdsKey struct{}

// callHolds is what one call's reads hold, given back at the call's end.
type callHolds struct {
	mu    sync.Mutex
	holds []*readHold
}

// TagRPC, HandleRPC, TagConn and HandleConn make ReadMemory a stats.Handler
// that gives back at a call's end what its reads still hold.
func (m *ReadMemory) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, holdsKey{}, &callHolds{})
}

func (m *ReadMemory) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.End); !ok {
		return
	}
	if c, ok := ctx.Value(holdsKey{}).(*callHolds); ok {
		c.mu.Lock()
		holds := c.holds
		c.holds = nil
		c.mu.Unlock()
		m.endHeld(ctx, holds)
	}
}

func (m *ReadMemory) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (m *ReadMemory) HandleConn(context.Context, stats.ConnStats)                       {}

// readHold is the read memory one call holds.
type readHold struct {
	m    *ReadMemory
	mu   sync.Mutex
	held int64
	// msg is the response handed to the codec; encoded, once it is.
	msg     any
	encoded bool
}

// hold starts a call's hold, and returns what the handler calls when it
// returns: nothing if the call's end gives the hold back (the stats
// handler is installed), else the hold's release.
func (m *ReadMemory) hold(ctx context.Context) (*readHold, func()) {
	if m == nil {
		return nil, func() {}
	}
	h := &readHold{m: m}
	if c, ok := ctx.Value(holdsKey{}).(*callHolds); ok {
		c.mu.Lock()
		c.holds = append(c.holds, h)
		c.mu.Unlock()
		return h, func() {}
	}
	return h, h.giveAll
}

// take takes n more bytes (at most the limit, so one response larger than
// it still goes, alone), waiting at most the read memory's wait.
func (h *readHold) take(ctx context.Context, n int64) error {
	if h == nil || n <= 0 {
		return nil
	}
	n = min(n, h.m.limit)
	if !h.m.sem.TryAcquire(n) { // room at once, the common case, makes no timer
		wctx, cancel := context.WithTimeout(ctx, h.m.wait)
		defer cancel()
		if err := h.m.sem.Acquire(wctx, n); err != nil {
			if ctx.Err() != nil {
				return toStatus(ctx.Err())
			}
			return notApplied(codes.ResourceExhausted, fmt.Sprintf("the node's read memory (--read-memory, %d bytes of responses in flight) stayed full for %v; ask again", h.m.limit, h.m.wait))
		}
	}
	h.mu.Lock()
	h.held += n
	h.mu.Unlock()
	return nil
}

// give gives back n bytes (at most what is held).
func (h *readHold) give(n int64) {
	if h == nil || n <= 0 {
		return
	}
	h.mu.Lock()
	n = min(n, h.held)
	h.held -= n
	h.mu.Unlock()
	if n > 0 {
		h.m.sem.Release(n)
	}
}

// keep gives back what is held over n.
func (h *readHold) keep(n int64) {
	if h == nil {
		return
	}
	h.mu.Lock()
	over := h.held - max(n, 0)
	h.mu.Unlock()
	h.give(over)
}

func (h *readHold) giveAll() {
	if h == nil {
		return
	}
	h.mu.Lock()
	n := h.held
	h.held = 0
	h.mu.Unlock()
	if n > 0 {
		h.m.sem.Release(n)
	}
}
