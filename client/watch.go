package client

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Change is one committed change a Watch reports.
type Change struct {
	Key []byte
	// Value is the new value; nil when Removed.
	Value     []byte
	Removed   bool
	Version   uint64
	Timestamp uint64
	// Slot and Offset are where the change is in the changelog.
	Slot   int32
	Offset int64
}

// WatchBatch is one message of a watch: changes (possibly none: the first
// message, or one that only moves the token) and the session token they
// reached. Keep the token to resume a later watch from it.
type WatchBatch struct {
	Changes []Change
	Session *Session
}

// WatchOptions tune a Watch.
type WatchOptions struct {
	// From is where to start: a session token from a write response or a
	// previous WatchBatch. Nil: changes committed from now on.
	From *Session
	// OnResume, if set, is told each time the stream broke (err) and the
	// watch resumes, from the last token it received, through addr.
	OnResume func(addr string, err error)
}

// Watch calls fn with the committed changes to keys under prefix (empty:
// every key), in changelog order per slot, until ctx ends or fn returns an
// error (which Watch returns). Any node serves a watch of the whole
// cluster: when the one serving it ends the stream (it shuts down, or dies),
// Watch resumes on another node from the last token it received, so fn sees
// every change once, without gaps. It returns errors that would not pass on
// a retry: a bad prefix or token (INVALID_ARGUMENT), a token the compacted
// changelog no longer holds (OUT_OF_RANGE), a missing data token.
func (c *Client) Watch(ctx context.Context, prefix []byte, o WatchOptions, fn func(WatchBatch) error) error {
	// The routes name the other nodes a watch may resume through (with
	// only its entry node, a watch whose node stopped tried that node for
	// ever), and an entry node that cannot be reached fails the watch at
	// once, as any call.
	if err := c.routed(ctx); err != nil {
		return err
	}
	from := sessionToProto(o.From)
	backoff := 50 * time.Millisecond
	tried := map[string]bool{}
	addr := c.entries[0]
	for {
		progressed, err := c.watchOnce(ctx, addr, prefix, &from, fn)
		var fnErr *callbackError
		if errors.As(err, &fnErr) {
			return fnErr.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !watchRetryable(err) {
			return err
		}
		if progressed {
			clear(tried)
			backoff = 50 * time.Millisecond
		}
		tried[addr] = true
		_ = c.refresh(ctx)
		next := c.watchAddr(tried)
		if next == "" { // every node tried: wait, then all of them again
			clear(tried)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)))):
			}
			backoff = min(2*backoff, 5*time.Second)
			next = c.watchAddr(tried)
		}
		addr = next
		if o.OnResume != nil {
			o.OnResume(addr, err)
		}
	}
}

// callbackError carries fn's error out of watchOnce.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// watchOnce runs one stream on addr, advancing *from with every message; it
// reports whether any message arrived.
func (c *Client) watchOnce(ctx context.Context, addr string, prefix []byte, from **sluicev1.Session, fn func(WatchBatch) error) (bool, error) {
	dc, err := c.data(addr)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := dc.Watch(ctx, &sluicev1.WatchRequest{Prefix: prefix, From: *from})
	if err != nil {
		return false, err
	}
	progressed := false
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return progressed, status.Error(codes.Unavailable, "client: the watch stream ended")
		}
		if err != nil {
			// A node that ends a watch says where to resume.
			for _, d := range status.Convert(err).Details() {
				if s, ok := d.(*sluicev1.Session); ok && len(s.Offsets) > 0 {
					*from = s
				}
			}
			return progressed, err
		}
		progressed = true
		*from = m.Session
		b := WatchBatch{Session: sessionFromProto(m.Session), Changes: make([]Change, len(m.Events))}
		for i, e := range m.Events {
			b.Changes[i] = Change{Key: e.Key, Removed: e.Removed, Version: e.Version, Timestamp: e.Timestamp, Slot: e.Slot, Offset: e.Offset}
			if !e.Removed {
				b.Changes[i].Value = e.Value
			}
		}
		if err := fn(b); err != nil {
			return progressed, &callbackError{err}
		}
	}
}

// watchAddr picks a node not tried yet: the entry nodes first, then the
// nodes of the routing table; "" when all were tried.
func (c *Client) watchAddr(tried map[string]bool) string {
	c.mu.Lock()
	addrs := slices.Clone(c.entries)
	if c.routes != nil {
		for _, rt := range c.routes.Routes {
			addrs = append(addrs, rt.Addr)
			addrs = append(addrs, rt.StandbyAddrs...)
		}
	}
	c.mu.Unlock()
	for _, a := range addrs {
		if a != "" && !tried[a] {
			return a
		}
	}
	return ""
}

// watchRetryable says whether a watch may resume after err: the node or
// the connection went away, or the node serves too many watches.
func watchRetryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return false
}
