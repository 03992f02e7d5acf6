package client

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/internal/retry"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Limits of one GetMany call on a node; GetMany splits a larger one.
const (
	maxCallKeys     = 1000
	maxCallKeyBytes = 1 << 20
)

// ReadOptions choose how a multi-key read is served.
type ReadOptions struct {
	// Consistency: LINEARIZABLE (the default) through the owners' inboxes;
	// SESSION or EVENTUAL from committed state, on owners or standbys.
	Consistency Consistency
	// Session, for SESSION: what the read must see. Nil: this client's own
	// writes so far.
	Session *Session
}

// Read is one key's answer: Found false is "not found".
type Read struct {
	Value
	Found bool
}

// GetMany reads keys, any number: it splits them by the node that serves
// each, in calls of at most 1,000 keys, and calls the nodes in parallel.
// Each partition's keys in one call are read at one point. out[i] is
// keys[i]. Keys that a node answers with a BadNode, UNAVAILABLE or its
// response limit are asked again (after a routes refresh) until the context
// ends; any other error fails the call.
func (c *Client) GetMany(ctx context.Context, keys [][]byte, o ReadOptions) ([]Read, error) {
	if o.Consistency == SessionRead && o.Session == nil {
		o.Session = c.Session()
	}
	if len(keys) == 0 { // the node's answer: INVALID_ARGUMENT
		dc, err := c.data(c.entries[0])
		if err != nil {
			return nil, err
		}
		_, err = dc.GetMany(ctx, &sluicev1.GetManyRequest{Consistency: consistencyToProto(o.Consistency), Session: sessionToProto(o.Session)})
		return nil, err
	}
	if err := c.routed(ctx); err != nil {
		return nil, err
	}
	out := make([]Read, len(keys))
	pending := make([]int, len(keys))
	for i := range pending {
		pending[i] = i
	}
	var unread int
	err := retry.Tries(ctx, c.attempts(ctx), retry.ClientPolicy(), func(attempt int) (bool, error) {
		if attempt > 0 {
			if err := c.unreachable(ctx); err != nil {
				return false, err
			}
		}
		again, err := c.getManyOnce(ctx, keys, pending, o, out)
		pending, unread = again, len(again)
		return err == nil && len(again) > 0, err
	})
	switch {
	case err != nil:
		return out, err
	case unread > 0 && ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case unread > 0:
		return nil, status.Errorf(codes.Unavailable, "client: %d keys still unread after %d attempts", unread, c.attempts(ctx))
	}
	return out, nil
}

// getManyOnce asks the nodes for the pending keys, one call per node and
// 1,000 keys, in parallel, and fills out. It returns the keys to ask again.
func (c *Client) getManyOnce(ctx context.Context, keys [][]byte, pending []int, o ReadOptions, out []Read) ([]int, error) {
	// One replica per partition for this attempt, so a partition's keys stay
	// in one call (read at one point).
	chosen := map[uint32]string{}
	byAddr := map[string][]int{}
	var addrs []string
	for _, i := range pending {
		addr, p := c.owner(keys[i])
		if o.Consistency != Linearizable {
			a, ok := chosen[p]
			if !ok {
				a = c.replica(keys[i])
				chosen[p] = a
			}
			addr = a
		}
		if _, ok := byAddr[addr]; !ok {
			addrs = append(addrs, addr)
		}
		byAddr[addr] = append(byAddr[addr], i)
	}
	type call struct {
		addr  string
		index []int
	}
	var calls []call
	for _, addr := range addrs {
		idx := byAddr[addr]
		for len(idx) > 0 {
			n, size := 0, 0
			for n < len(idx) && n < maxCallKeys && (n == 0 || size+len(keys[idx[n]]) <= maxCallKeyBytes) {
				size += len(keys[idx[n]])
				n++
			}
			calls = append(calls, call{addr, idx[:n]})
			idx = idx[n:]
		}
	}
	level, session := consistencyToProto(o.Consistency), sessionToProto(o.Session)
	var (
		mu    sync.Mutex
		again []int
		first error
		wg    sync.WaitGroup
	)
	for _, cl := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &sluicev1.GetManyRequest{Keys: make([][]byte, len(cl.index)), Consistency: level, Session: session}
			for j, i := range cl.index {
				req.Keys[j] = keys[i]
			}
			var resp *sluicev1.GetManyResponse
			dc, err := c.data(cl.addr)
			if err == nil {
				resp, err = dc.GetMany(ctx, req)
				err = c.failed(cl.addr, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if retryable(err, true) {
					again = append(again, cl.index...)
				} else if first == nil {
					first = err
				}
				return
			}
			if len(resp.Results) != len(cl.index) {
				if first == nil {
					first = status.Errorf(codes.Internal, "client: %s answered %d results for %d keys", cl.addr, len(resp.Results), len(cl.index))
				}
				return
			}
			for j, i := range cl.index {
				r := resp.Results[j]
				if r.Error != nil {
					if retryableKey(r.Error) {
						again = append(again, i)
					} else if first == nil {
						first = status.Errorf(codes.Code(r.Error.Code), "key %q: %s", keys[i], r.Error.Message)
					}
					continue
				}
				out[i] = Read{Value: Value{Data: r.Value, Version: r.Version, Timestamp: r.Timestamp}, Found: r.Found}
			}
		}()
	}
	wg.Wait()
	return again, first
}

// retryableKey says whether one key's error in a GetMany may go away when
// it is asked again: a BadNode, a partition not serving yet, a full inbox or
// the response's size limit.
func retryableKey(e *sluicev1.KeyError) bool {
	switch codes.Code(e.Code) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	case codes.FailedPrecondition:
		return e.BadNode != nil
	}
	return false
}
