package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"iter"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/internal/retry"
	"github.com/sluicedb/sluice/pagetoken"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// ScanOptions say what a Scan reads: a prefix or a range [Start, End) (an
// empty End: no upper bound).
type ScanOptions struct {
	Prefix     []byte
	Start, End []byte
	// Limit stops the scan after this many keys (0: no limit).
	Limit int
	// PageToken resumes a scan of the same prefix or range after the last
	// key of a previous page (ScanPage's next).
	PageToken []byte
	// Consistency: LINEARIZABLE (the default) makes each partition's part
	// see every write acknowledged before the scan; SESSION waits for
	// Session (nil: this client's writes); EVENTUAL reads what each owner has.
	Consistency Consistency
	Session     *Session
}

// KeyValue is one key of a scan and its value.
type KeyValue struct {
	Key []byte
	Value
}

// Scan returns the keys of a prefix or range in key order. Keys are hashed
// over slots, so every partition of the cluster holds part of any range:
// Scan asks every node for its partitions' parts at once and merges the
// streams, each partition's part read at one point. The nodes stream with
// backpressure: a slow consumer holds little memory anywhere. A node that
// fails or moves a partition mid-scan (BadNode, UNAVAILABLE) makes Scan
// refresh the routes and resume after the last key it returned.
func (c *Client) Scan(ctx context.Context, o ScanOptions) iter.Seq2[KeyValue, error] {
	return func(yield func(KeyValue, error) bool) {
		_, err := c.scan(ctx, o, yield)
		if err != nil {
			yield(KeyValue{}, err)
		}
	}
}

// ScanPage reads up to o.Limit keys (0: all of them) and returns the token
// of the next page, nil when none remain.
func (c *Client) ScanPage(ctx context.Context, o ScanOptions) (page []KeyValue, next []byte, err error) {
	next, err = c.ScanFunc(ctx, o, func(kv KeyValue) bool {
		page = append(page, kv)
		return true
	})
	if err != nil {
		return nil, nil, err
	}
	return page, next, nil
}

// ScanFunc is Scan with a callback, streamed as ScanPage's page is not: fn
// gets each key in order until it returns false. When o.Limit stopped the
// scan and keys remain, next is the token of the next page.
func (c *Client) ScanFunc(ctx context.Context, o ScanOptions, fn func(KeyValue) bool) (next []byte, err error) {
	return c.scan(ctx, o, func(kv KeyValue, _ error) bool { return fn(kv) })
}

// scan runs a scan, resuming after the last key yielded when a node fails
// it in a way that may pass. It returns the next page's token when the
// limit stopped it and keys remain.
func (c *Client) scan(ctx context.Context, o ScanOptions, yield func(KeyValue, error) bool) ([]byte, error) {
	if o.Consistency == SessionRead && o.Session == nil {
		o.Session = c.Session()
	}
	if err := c.routed(ctx); err != nil {
		return nil, err
	}
	token := o.PageToken
	var last []byte
	sent := 0
	var next []byte
	err := retry.Tries(ctx, c.attempts(ctx), retry.ClientPolicy(), func(attempt int) (bool, error) {
		if attempt > 0 {
			if err := c.unreachable(ctx); err != nil {
				return false, err
			}
		}
		if last != nil {
			token = c.pageToken(o, last)
		}
		remaining := 0
		if o.Limit > 0 {
			if remaining = o.Limit - sent; remaining <= 0 { // failed right after the last key
				next = c.pageToken(o, last)
				return false, nil
			}
		}
		more, err := c.scanOnce(ctx, o, token, remaining, func(kv KeyValue) bool {
			last, sent = kv.Key, sent+1
			return yield(kv, nil)
		})
		switch {
		case errors.Is(err, errStopped):
			return false, nil
		case err == nil && more && last != nil:
			next = c.pageToken(o, last)
			return false, nil
		case err == nil:
			return false, nil
		}
		return retryable(err, true), err
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// errStopped: the consumer stopped the scan.
var errStopped = errors.New("client: scan stopped")

func (c *Client) pageToken(o ScanOptions, after []byte) []byte {
	c.mu.Lock()
	cluster := c.routes.GetCluster()
	c.mu.Unlock()
	return pagetoken.Encode(pagetoken.Token{Cluster: cluster, Range: pagetoken.RangeOf(o.Prefix, o.Start, o.End), After: after})
}

// scanStream is one node's stream and the entry it is at.
type scanStream struct {
	addr    string
	recv    func() (*sluicev1.ScanResponse, error)
	entries []*sluicev1.ScanEntry
	done    bool
}

// next moves to the stream's next entry, reading a message if needed.
func (s *scanStream) next() error {
	if len(s.entries) > 0 {
		s.entries = s.entries[1:]
	}
	for len(s.entries) == 0 && !s.done {
		m, err := s.recv()
		if err == io.EOF {
			s.done = true
			return nil
		}
		if err != nil {
			return err
		}
		s.entries = m.Entries
	}
	return nil
}

// scanOnce scans every partition once: one stream per node, merged by key.
// limit > 0 stops it after that many keys, and more then says whether keys
// remain.
func (c *Client) scanOnce(ctx context.Context, o ScanOptions, token []byte, limit int, yield func(KeyValue) bool) (more bool, err error) {
	c.mu.Lock()
	routes := c.routes
	c.mu.Unlock()
	if routes == nil {
		return false, status.Error(codes.Unavailable, "client: no routing table yet")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	byAddr := map[string][]uint32{}
	var addrs []string
	for _, rt := range routes.Routes {
		if rt.Addr == "" {
			return false, status.Errorf(codes.Unavailable, "client: slots [%d, %d) have no node", rt.From, rt.To)
		}
		if _, ok := byAddr[rt.Addr]; !ok {
			addrs = append(addrs, rt.Addr)
		}
		byAddr[rt.Addr] = append(byAddr[rt.Addr], rt.Partition)
	}
	var streams []*scanStream
	for _, addr := range addrs {
		dc, err := c.data(addr)
		if err != nil {
			return false, err
		}
		req := &sluicev1.ScanRequest{Prefix: o.Prefix, Start: o.Start, End: o.End, PageToken: token, Consistency: consistencyToProto(o.Consistency), Session: sessionToProto(o.Session), Partitions: byAddr[addr]}
		if limit > 0 {
			req.Limit = uint32(limit + 1) // one more: says whether keys remain
		}
		st, err := dc.Scan(ctx, req)
		if err != nil {
			return false, err
		}
		s := &scanStream{addr: addr, recv: st.Recv}
		if err := s.next(); err != nil {
			return false, err
		}
		streams = append(streams, s)
	}
	for n := 0; ; n++ {
		var low *scanStream
		for _, s := range streams {
			if len(s.entries) > 0 && (low == nil || bytes.Compare(s.entries[0].Key, low.entries[0].Key) < 0) {
				low = s
			}
		}
		if low == nil {
			return false, nil
		}
		if limit > 0 && n == limit {
			return true, nil
		}
		e := low.entries[0]
		if !yield(KeyValue{Key: e.Key, Value: Value{Data: e.Value, Version: e.Version, Timestamp: e.Timestamp}}) {
			return false, errStopped
		}
		if err := low.next(); err != nil {
			return false, err
		}
	}
}
