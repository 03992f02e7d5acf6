// Package client is sluice's Go client.
//
//	c, err := client.New("127.0.0.1:7400", "127.0.0.1:7410")
//	defer c.Close()
//	_, err = c.Upsert(ctx, client.Entry{Key: []byte("k"), Value: []byte("v")})
//	v, found, err := c.Get(ctx, []byte("k"))
//	reads, err := c.GetMany(ctx, keys, client.ReadOptions{})          // many keys, split by node
//	for kv, err := range c.Scan(ctx, client.ScanOptions{Prefix: p}) {} // every partition, merged in key order
//	err = c.Watch(ctx, prefix, client.WatchOptions{From: tok}, fn)     // committed changes, resumed across nodes
//
// It keeps the cluster's routing table (from any node's GetRoutes), sends
// each key to its owner, splits a multi-key Upsert by partition, and on
// BadNode or Unavailable refreshes the table and retries with backoff until
// the context ends. A write whose outcome is unknown (code Unknown) is not
// retried: it is returned to the caller. Neither is an answer that would be
// the same on every try: InvalidArgument, Unauthenticated, a ResourceExhausted
// without the server's NotApplied detail (a request over the node's size
// limit, which the client refuses before sending anyway).
//
// Nodes that require a data token or client certificates:
//
//	c, err := client.Dial([]string{"node1:7400"}, client.WithToken(token), client.WithTLS(tc))
package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/internal/retry"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Entry is one key and its value.
type Entry struct {
	Key   []byte
	Value []byte
	// TTL, if set, makes the value expire this long after the write (whole
	// seconds; a part of a second is rounded up).
	TTL time.Duration
	// ExpectedVersion, if set, makes the write a compare-and-set: it applies
	// only if the key's version is this one (0: must not exist); otherwise the
	// call fails with codes.Aborted naming the current version.
	ExpectedVersion *uint64
}

// Value is what Get returns.
type Value struct {
	Data      []byte
	Version   uint64
	Timestamp uint64
}

// Client talks to a sluice cluster.
type Client struct {
	entries []string
	creds   credentials.TransportCredentials
	token   bearer // sent on every call when set
	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
	routes  *sluicev1.Routes
	// stale: a call failed in a way that may mean its node is gone; the
	// next call fetches the routes again first (a failed-over partition is
	// found on its new owner).
	stale bool
	// named are nodes that BadNode answers named as owners: asked for the
	// routes too (known), so that a client whose entries cannot give them
	// (a node whose Kafka hangs refuses GetRoutes, yet knows the owner)
	// still finds its way.
	named   []string
	session map[int32]int64 // what this client's writes reached, for SESSION reads
	cluster string          // the cluster of the session's tokens
	// maxAttempts bounds the tries of one call (WithMaxAttempts); 0: see
	// attempts.
	maxAttempts int
	dial        *dialer
}

// ErrClosed is the error of a call made on a closed client.
var ErrClosed = errors.New("client: closed")

func (c *Client) data(addr string) (sluicev1.DataClient, error) {
	cc, err := c.conn(addr)
	if err != nil {
		return nil, err
	}
	return sluicev1.NewDataClient(cc), nil
}

// conn is the client's connection to addr, made on first use.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns == nil {
		return nil, ErrClosed
	}
	cc, ok := c.conns[addr]
	if !ok {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(c.creds), grpc.WithUnaryInterceptor(refuseOversized), grpc.WithContextDialer(c.dial.dial),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(MaxRequestBytes), grpc.MaxCallRecvMsgSize(8<<20)),
			// A connection that does not come up within the dial timeout
			// (a frozen node takes the TCP connection and never answers)
			// fails, and one lost is tried again within a second or so
			// (gRPC's defaults: 20 s and up to 2 min).
			grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: c.dial.timeout,
				Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}}),
			// A call waiting on a connection silent for 10 s pings it, and
			// fails once 5 s pass without an answer (a node frozen with
			// the call in flight).
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second})}
		if c.token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(c.token))
		}
		var err error
		cc, err = grpc.NewClient(target(addr), opts...)
		if err != nil {
			return nil, err
		}
		c.conns[addr] = cc
	}
	return cc, nil
}

// ready waits, for the dial timeout at most, until the connection to addr
// is up. A call is sent only on a connection that is: one that is not
// (nothing listens there, or a frozen node never answers the handshake) was
// certainly not applied, so it may be tried again elsewhere, a write too
// (a write to a dead owner used to fail at once with "connection refused"
// although its partition failed over seconds later).
func (c *Client) ready(ctx context.Context, addr string, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, c.dial.timeout)
	defer cancel()
	for {
		s := cc.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.Shutdown:
			return ErrClosed
		case connectivity.Idle:
			cc.Connect()
		case connectivity.TransientFailure:
			return &ConnectError{Addr: addr, Err: c.dial.lastFailure(addr, "the connection failed"), notSent: true}
		}
		if !cc.WaitForStateChange(ctx, s) {
			return &ConnectError{Addr: addr, Err: c.dial.lastFailure(addr, fmt.Sprintf("no connection within %v", c.dial.timeout)), notSent: true}
		}
	}
}

// routesTimeout bounds one node's GetRoutes in refresh.
const routesTimeout = 5 * time.Second

// refresh fetches the routing table from the first node that answers: the
// entry nodes, then the others the table last named (an entry node may be
// the one that died). When none answers it returns the first entry's
// error, a *ConnectError if it could not be reached.
func (c *Client) refresh(ctx context.Context) error {
	var first error
	for _, addr := range c.known() {
		cc, err := c.conn(addr)
		if err == nil {
			err = c.ready(ctx, addr, cc)
		}
		if err == nil {
			var r *sluicev1.Routes
			// A node frozen on a live connection answers nothing: ask the
			// next one.
			rctx, cancel := context.WithTimeout(ctx, routesTimeout)
			r, err = sluicev1.NewDataClient(cc).GetRoutes(rctx, &sluicev1.GetRoutesRequest{})
			cancel()
			if err == nil {
				c.mu.Lock()
				c.routes, c.stale = r, false
				c.mu.Unlock()
				return nil
			}
		}
		if errors.Is(err, ErrClosed) {
			return err
		}
		if first == nil {
			first = c.dial.explain(addr, err)
		}
	}
	return first
}

// known is every node address the client knows: the entries, then the
// owners and standbys of the table, then the owners BadNode answers named,
// once each.
func (c *Client) known() []string {
	addrs := slices.Clone(c.entries)
	c.mu.Lock()
	defer c.mu.Unlock()
	var more []string
	for _, rt := range c.routes.GetRoutes() {
		more = append(append(more, rt.Addr), rt.StandbyAddrs...)
	}
	for _, a := range append(more, c.named...) {
		if a != "" && !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// failed is the error of a call to addr, explained (a connection that could
// not be made is a *ConnectError). One that may mean the node is gone
// (UNAVAILABLE, a deadline) marks the routes stale: the next call fetches
// them again before it picks a node.
func (c *Client) failed(addr string, err error) error {
	err = c.dial.explain(addr, err)
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		c.mu.Lock()
		c.stale = true
		c.mu.Unlock()
	}
	for _, d := range status.Convert(err).Details() {
		if bn, ok := d.(*sluicev1.BadNode); ok && bn.Addr != "" {
			c.mu.Lock()
			if !slices.Contains(c.named, bn.Addr) {
				c.named = append(c.named, bn.Addr)
			}
			c.mu.Unlock()
		}
	}
	return err
}

// routed loads the routing table if the client has none yet, or it went
// stale; it fails only when no node could be reached.
func (c *Client) routed(ctx context.Context) error {
	c.mu.Lock()
	fresh := c.routes != nil && !c.stale
	c.mu.Unlock()
	if fresh {
		return nil
	}
	return c.unreachable(ctx)
}

// unreachable is refresh's error when no entry node could be reached, or
// none takes the client's token: the call fails with it at once, since no
// retry can succeed. Other refresh errors leave the call to find its own
// answer.
func (c *Client) unreachable(ctx context.Context) error {
	var ce *ConnectError
	err := c.refresh(ctx)
	switch {
	case errors.As(err, &ce):
		return err
	case status.Code(err) == codes.Unauthenticated, status.Code(err) == codes.PermissionDenied:
		// A missing or wrong token: no retry passes. (A scan without its
		// token used to retry until its deadline and say "no routing
		// table yet".)
		return err
	}
	return nil
}

// owner is the address of the node owning key, and the partition, from the
// cached table (the first entry node when unknown).
func (c *Client) owner(key []byte) (string, uint32) {
	if rt := c.route(key); rt != nil && rt.Addr != "" {
		return rt.Addr, rt.Partition
	}
	return c.entries[0], 0
}

// replica is the owner or, at random, one of the standbys of key's
// partition: any of them serves SESSION and EVENTUAL reads.
func (c *Client) replica(key []byte) string {
	rt := c.route(key)
	if rt == nil || rt.Addr == "" {
		return c.entries[0]
	}
	if i := rand.IntN(len(rt.StandbyAddrs) + 1); i > 0 && rt.StandbyAddrs[i-1] != "" {
		return rt.StandbyAddrs[i-1]
	}
	return rt.Addr
}

func (c *Client) route(key []byte) *sluicev1.Route {
	c.mu.Lock()
	r := c.routes
	c.mu.Unlock()
	if r == nil || r.Slots == 0 {
		return nil
	}
	slot := keyspace.Slot(key, r.Slots)
	for _, rt := range r.Routes {
		if slot >= rt.From && slot < rt.To {
			return rt
		}
	}
	return nil
}

// retryable says whether err allows sending the request again: a BadNode or
// the server's own NotApplied answer; for a read, any Unavailable (a broken
// connection included). A write whose connection broke mid-call may have been
// applied: it is not sent again.
func retryable(err error, read bool) bool {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable, codes.ResourceExhausted, codes.FailedPrecondition:
		for _, d := range st.Details() {
			switch d.(type) {
			case *sluicev1.BadNode, *sluicev1.NotApplied:
				return true
			}
		}
		return read && st.Code() == codes.Unavailable
	}
	return false
}

// observe adds a write's session token to the client's session.
func (c *Client) observe(s *sluicev1.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for slot, off := range s.GetOffsets() {
		c.session[slot] = max(c.session[slot], off)
	}
	if s.GetCluster() != "" {
		c.cluster = s.GetCluster()
	}
}

// Session returns the client's session token: what its writes reached. Pass
// it to another client's GetSession to read one's own writes there.
func (c *Client) Session() *Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &Session{Offsets: make(map[int32]int64, len(c.session)), Cluster: c.cluster}
	for slot, off := range c.session {
		s.Offsets[slot] = off
	}
	return s
}

// do runs a write against the owner of key, refreshing routes and retrying
// answers that say the request was not applied.
func (c *Client) do(ctx context.Context, key []byte, call func(dc sluicev1.DataClient) error) error {
	return c.doAt(ctx, key, false, func(k []byte) string { addr, _ := c.owner(k); return addr }, call)
}

// DefaultMaxAttempts bounds the tries of a call with no deadline and no
// WithMaxAttempts.
const DefaultMaxAttempts = 30

// attempts is how many tries a call with ctx may make: WithMaxAttempts's,
// else until ctx's deadline, else DefaultMaxAttempts.
func (c *Client) attempts(ctx context.Context) int {
	if c.maxAttempts > 0 {
		return c.maxAttempts
	}
	if _, ok := ctx.Deadline(); ok {
		return math.MaxInt
	}
	return DefaultMaxAttempts
}

// doAt is do against the node pick chooses; a read may also be retried after
// a broken connection.
func (c *Client) doAt(ctx context.Context, key []byte, read bool, pick func([]byte) string, call func(dc sluicev1.DataClient) error) error {
	if err := c.routed(ctx); err != nil {
		return err
	}
	return retry.Tries(ctx, c.attempts(ctx), retry.ClientPolicy(), func(attempt int) (bool, error) {
		if attempt > 0 {
			if err := c.unreachable(ctx); err != nil {
				return false, err
			}
		}
		addr := pick(key)
		cc, err := c.conn(addr)
		if err != nil {
			return false, err
		}
		if err := c.ready(ctx, addr, cc); err != nil {
			return ctx.Err() == nil, c.failed(addr, err)
		}
		err = c.failed(addr, call(sluicev1.NewDataClient(cc)))
		return err != nil && retryable(err, read), err
	})
}

// Upsert writes entries: split by partition, each part atomic, sent to its
// owner in parallel. It returns one result per entry, in order.
func (c *Client) Upsert(ctx context.Context, entries ...Entry) ([]*WriteResult, error) {
	if len(entries) == 0 {
		return nil, c.do(ctx, nil, func(dc sluicev1.DataClient) error {
			_, err := dc.Upsert(ctx, &sluicev1.UpsertRequest{})
			return err
		})
	}
	if err := c.routed(ctx); err != nil {
		return nil, err
	}
	parts := map[uint32][]int{}
	var order []uint32
	for i, e := range entries {
		_, p := c.owner(e.Key)
		if _, ok := parts[p]; !ok {
			order = append(order, p)
		}
		parts[p] = append(parts[p], i)
	}
	out := make([]*WriteResult, len(entries))
	errs := make(chan error, len(order))
	for _, p := range order {
		idx := parts[p]
		go func() {
			req := &sluicev1.UpsertRequest{Entries: make([]*sluicev1.Entry, len(idx))}
			for j, i := range idx {
				req.Entries[j] = &sluicev1.Entry{Key: entries[i].Key, Value: entries[i].Value, TtlSeconds: ttlSeconds(entries[i].TTL), ExpectedVersion: entries[i].ExpectedVersion}
			}
			errs <- c.do(ctx, entries[idx[0]].Key, func(dc sluicev1.DataClient) error {
				resp, err := dc.Upsert(ctx, req)
				if err == nil {
					for j, i := range idx {
						out[i] = writeResultFromProto(resp.Results[j])
					}
					c.observe(resp.Session)
				}
				return err
			})
		}()
	}
	var first error
	for range order {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// Get reads a key linearizably; found is false when it does not exist.
func (c *Client) Get(ctx context.Context, key []byte) (Value, bool, error) {
	return c.get(ctx, &sluicev1.GetRequest{Key: key})
}

// GetSession reads a key from committed state once the serving replica has
// applied session (nil: this client's own writes so far).
func (c *Client) GetSession(ctx context.Context, key []byte, session *Session) (Value, bool, error) {
	if session == nil {
		session = c.Session()
	}
	return c.get(ctx, &sluicev1.GetRequest{Key: key, Consistency: sluicev1.Consistency_SESSION, Session: sessionToProto(session)})
}

// GetEventual reads a key's committed state as the serving replica has it.
func (c *Client) GetEventual(ctx context.Context, key []byte) (Value, bool, error) {
	return c.get(ctx, &sluicev1.GetRequest{Key: key, Consistency: sluicev1.Consistency_EVENTUAL})
}

func (c *Client) get(ctx context.Context, req *sluicev1.GetRequest) (v Value, found bool, err error) {
	pick := func(k []byte) string { addr, _ := c.owner(k); return addr }
	if req.Consistency != sluicev1.Consistency_LINEARIZABLE {
		pick = c.replica
	}
	var resp *sluicev1.GetResponse
	err = c.doAt(ctx, req.Key, true, pick, func(dc sluicev1.DataClient) (err error) {
		resp, err = dc.Get(ctx, req)
		return err
	})
	if err != nil || !resp.Found {
		return Value{}, false, err
	}
	return Value{Data: resp.Value, Version: resp.Version, Timestamp: resp.Timestamp}, true, nil
}

// Remove deletes a key; existed says whether it was there.
func (c *Client) Remove(ctx context.Context, key []byte) (existed bool, err error) {
	err = c.do(ctx, key, func(dc sluicev1.DataClient) error {
		resp, err := dc.Remove(ctx, &sluicev1.RemoveRequest{Key: key})
		existed = err == nil && resp.Existed
		if err == nil {
			c.observe(resp.Session)
		}
		return err
	})
	return existed, err
}

// Increment adds delta to a key holding a decimal int64 (missing: 0) and
// returns the new value.
func (c *Client) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	return c.IncrementTTL(ctx, key, delta, 0)
}

// IncrementTTL is Increment that also makes the value expire ttl after the
// write (0: the key keeps the expiry it has).
func (c *Client) IncrementTTL(ctx context.Context, key []byte, delta int64, ttl time.Duration) (int64, error) {
	var n int64
	err := c.do(ctx, key, func(dc sluicev1.DataClient) error {
		resp, err := dc.Increment(ctx, &sluicev1.IncrementRequest{Key: key, Delta: delta, TtlSeconds: ttlSeconds(ttl)})
		if err == nil {
			n = resp.Value
			c.observe(resp.Session)
		}
		return err
	})
	return n, err
}

// ttlSeconds is d in whole seconds, rounded up (0 for none).
func ttlSeconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	return uint32((d + time.Second - 1) / time.Second)
}

// Close closes every connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.conns = nil
	return nil
}
