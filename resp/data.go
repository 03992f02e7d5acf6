package resp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// Every command runs the data plane's own methods (server.Data) in this
// process for the keys this node serves. A key it does not serve (the
// routing table names another owner, or the call answers BadNode), or a
// call that answers it was not applied (a partition restoring, moving or
// full), goes through the forwarding client, which sends it to the key's
// owner and retries as the Go client does, within forwardTimeout.

// Limits of the commands of many keys (MGET, EXISTS, DEL): GetMany's.
const (
	maxKeys     = server.MaxGetManyKeys
	maxKeyBytes = server.MaxGetManyKeyBytes
	// forwardWindow is the most keys of an MGET read through the
	// forwarding client at once, values held until written.
	forwardWindow = 16
)

func validateKey(k []byte) error { return kv.ValidateKey(k) }

// served says whether this node serves key itself at the connection's
// level: it owns it, or keeps a standby of it and the read is SESSION or
// EVENTUAL. A bad key is served here: the data plane answers it.
func (c *conn) served(key []byte, read bool) bool {
	d := c.s.data
	if c.s.fwd == nil || validateKey(key) != nil {
		return true
	}
	t := d.Table()
	if t == nil {
		return true
	}
	_, owner, ok := t.Lookup(key)
	if !ok || owner.Node == d.Node {
		return true
	}
	return read && c.level != sluicev1.Consistency_LINEARIZABLE && slices.Contains(owner.Standbys, d.Node)
}

// forward reports whether err, a data-plane answer, lets the command go to
// the forwarding client: the key is elsewhere (BadNode), or the call was
// certainly not applied (NotApplied), or, for a read, any UNAVAILABLE.
func (c *conn) forward(err error, read bool) bool {
	return c.s.fwd != nil && retryable(err, read)
}

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

func isBadNode(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*sluicev1.BadNode); ok {
			return true
		}
	}
	return false
}

func (c *conn) forwardCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, forwardTimeout)
}

func (c *conn) readOptions() client.ReadOptions {
	o := client.ReadOptions{Consistency: client.Consistency(c.level)}
	if c.level == sluicev1.Consistency_SESSION {
		o.Session = c.clientSession()
	}
	return o
}

// clientSession is the connection's session token as the forwarding
// client takes it (sharing its offsets: calls are one at a time).
func (c *conn) clientSession() *client.Session {
	return &client.Session{Offsets: c.session.Offsets, Cluster: c.session.Cluster}
}

// observe adds a write's session token to the connection's.
func (c *conn) observe(s *sluicev1.Session) {
	for slot, off := range s.GetOffsets() {
		c.session.Offsets[slot] = max(c.session.Offsets[slot], off)
	}
}

// observeForwarded adds what the forwarding client's writes reached in
// key's slot: at least this connection's forwarded write there (Remove and
// Increment do not return it), perhaps others' writes too, which a SESSION
// read then waits for as well (they are committed).
func (c *conn) observeForwarded(key []byte) {
	t := c.s.data.Table()
	if t == nil {
		return
	}
	slot := keyspace.Slot(key, t.Slots())
	if off, ok := c.s.fwd.Session().Offsets[slot]; ok {
		c.session.Offsets[slot] = max(c.session.Offsets[slot], off)
	}
}

// readOne reads key at the connection's level. A read this node serves
// but refused (its standby has not caught up, its partition is restoring)
// goes to the owner, LINEARIZABLE, which any level takes: the forwarding
// client would pick a replica at random, this node among them.
func (c *conn) readOne(key []byte) (v []byte, found bool, err error) {
	level := c.level
	if c.served(key, true) {
		req := c.get
		req.Key, req.Consistency, req.Session = key, c.level, nil
		if c.level == sluicev1.Consistency_SESSION {
			req.Session = c.session
		}
		resp, err := c.s.data.Get(c.ctx, req)
		req.Key, req.Session = nil, nil
		if err == nil {
			return resp.Value, resp.Found, nil
		}
		if !c.forward(err, true) {
			return nil, false, err
		}
		level = sluicev1.Consistency_LINEARIZABLE
	}
	ctx, cancel := c.forwardCtx()
	defer cancel()
	var val client.Value
	switch level {
	case sluicev1.Consistency_SESSION:
		val, found, err = c.s.fwd.GetSession(ctx, key, c.clientSession())
	case sluicev1.Consistency_EVENTUAL:
		val, found, err = c.s.fwd.GetEventual(ctx, key)
	default:
		val, found, err = c.s.fwd.Get(ctx, key)
	}
	return val.Data, found, err
}

// version reads key's version linearizably (SET XX).
func (c *conn) version(key []byte) (uint64, bool, error) {
	if c.served(key, false) {
		resp, err := c.s.data.Get(c.ctx, &sluicev1.GetRequest{Key: key})
		if err == nil {
			return resp.Version, resp.Found, nil
		}
		if !c.forward(err, true) {
			return 0, false, err
		}
	}
	ctx, cancel := c.forwardCtx()
	defer cancel()
	v, found, err := c.s.fwd.Get(ctx, key)
	return v.Version, found, err
}

// readMany reads keys at the connection's level and hands each answer to
// emit, in order. An error it returns came before any emit: bad input, or
// the node's read memory full. A key that failed otherwise is emitted
// with its error. Keys this node serves are read in one GetMany (each
// partition's at one point); the others, and any the response had no room
// for, through the forwarding client, forwardWindow keys at a time, so
// that the values held at once stay bounded.
func (c *conn) readMany(keys [][]byte, emit func(v []byte, found bool, err error)) error {
	req := &sluicev1.GetManyRequest{Keys: keys, Consistency: c.level}
	if c.level == sluicev1.Consistency_SESSION {
		req.Session = c.session
	}
	resp, err := c.s.data.GetMany(c.ctx, req)
	if err != nil {
		return err
	}
	type answer struct {
		v     []byte
		found bool
		err   error
	}
	got := make([]answer, len(keys))
	pending := make([]bool, len(keys))
	refused := make([]bool, len(keys)) // served here but refused: ask the owner (readOne)
	for i, r := range resp.Results {
		if r.Error == nil {
			got[i] = answer{v: r.Value, found: r.Found}
			continue
		}
		err := status.Error(codes.Code(r.Error.Code), r.Error.Message)
		if c.s.fwd != nil && (codes.Code(r.Error.Code) != codes.FailedPrecondition || r.Error.BadNode != nil) && retryableKeyCode(codes.Code(r.Error.Code)) {
			pending[i], refused[i] = true, r.Error.BadNode == nil
			continue
		}
		got[i] = answer{err: err}
	}
	for i := range keys {
		if pending[i] {
			var window []int
			for j := i; j < len(keys) && len(window) < forwardWindow; j++ {
				if pending[j] {
					window = append(window, j)
				}
			}
			wkeys := make([][]byte, len(window))
			atOwner := make([]bool, len(window))
			for k, j := range window {
				wkeys[k], atOwner[k] = keys[j], refused[j]
			}
			for k, r := range c.forwardMany(wkeys, atOwner) {
				j := window[k]
				pending[j] = false
				got[j] = answer{v: r.Data, found: r.Found, err: r.err}
			}
		}
		emit(got[i].v, got[i].found, got[i].err)
		got[i] = answer{} // written: not held any longer
		if len(c.out) >= flushAt {
			c.flush()
		}
	}
	return nil
}

// forwarded is a key's answer from its owner.
type forwarded struct {
	client.Read
	err error
}

// forwardMany reads keys from their owners through the forwarding client:
// one GetMany per owner, all at once, so that an owner that does not
// answer fails its own keys only (one GetMany of all of them failed every
// key when one owner was paused). Keys atOwner (this node refused them)
// are read LINEARIZABLE, at the owner.
func (c *conn) forwardMany(keys [][]byte, atOwner []bool) []forwarded {
	out := make([]forwarded, len(keys))
	type group struct {
		owner   string
		atOwner bool
	}
	byOwner := map[group][]int{}
	t := c.s.data.Table()
	for i, k := range keys {
		owner := ""
		if t != nil {
			if _, p, ok := t.Lookup(k); ok {
				owner = p.Node
			}
		}
		g := group{owner, atOwner[i]}
		byOwner[g] = append(byOwner[g], i)
	}
	ctx, cancel := c.forwardCtx()
	defer cancel()
	var wg sync.WaitGroup
	for g, idx := range byOwner {
		wg.Go(func() {
			ks := make([][]byte, len(idx))
			for k, i := range idx {
				ks[k] = keys[i]
			}
			o := c.readOptions()
			if g.atOwner {
				o = client.ReadOptions{Consistency: client.Linearizable}
			}
			reads, err := c.s.fwd.GetMany(ctx, ks, o)
			for k, i := range idx {
				if err != nil {
					out[i].err = err
				} else {
					out[i].Read = reads[k]
				}
			}
		})
	}
	wg.Wait()
	return out
}

// retryableKeyCode: a key's error in a GetMany that may pass when asked
// again (the Go client's rule): BadNode, a partition not serving, a full
// response or inbox.
func retryableKeyCode(code codes.Code) bool {
	return code == codes.Unavailable || code == codes.ResourceExhausted || code == codes.FailedPrecondition
}

// upsert writes one entry.
func (c *conn) upsert(e *sluicev1.Entry) error {
	if c.served(e.Key, false) {
		resp, err := c.s.data.Upsert(c.ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{e}})
		if err == nil {
			c.observe(resp.Session)
			return nil
		}
		if !c.forward(err, false) {
			return err
		}
	}
	ctx, cancel := c.forwardCtx()
	defer cancel()
	res, err := c.s.fwd.Upsert(ctx, client.Entry{Key: e.Key, Value: e.Value, TTL: time.Duration(e.TtlSeconds) * time.Second, ExpectedVersion: e.ExpectedVersion})
	if err != nil {
		return err
	}
	if r := res[0]; r.Offset >= 0 {
		c.session.Offsets[r.Slot] = max(c.session.Offsets[r.Slot], r.Offset+1)
	}
	return nil
}

// remove deletes key; existed says whether it was there.
func (c *conn) remove(key []byte) (bool, error) {
	if c.served(key, false) {
		resp, err := c.s.data.Remove(c.ctx, &sluicev1.RemoveRequest{Key: key})
		if err == nil {
			c.observe(resp.Session)
			return resp.Existed, nil
		}
		if !c.forward(err, false) {
			return false, err
		}
	}
	ctx, cancel := c.forwardCtx()
	defer cancel()
	existed, err := c.s.fwd.Remove(ctx, key)
	if err == nil {
		c.observeForwarded(key)
	}
	return existed, err
}

// incr adds delta to key.
func (c *conn) incr(key []byte, delta int64) (int64, error) {
	if c.served(key, false) {
		resp, err := c.s.data.Increment(c.ctx, &sluicev1.IncrementRequest{Key: key, Delta: delta})
		if err == nil {
			c.observe(resp.Session)
			return resp.Value, nil
		}
		if !c.forward(err, false) {
			return 0, err
		}
	}
	ctx, cancel := c.forwardCtx()
	defer cancel()
	n, err := c.s.fwd.Increment(ctx, key, delta)
	if err == nil {
		c.observeForwarded(key)
	}
	return n, err
}

// errorPrefix is a data-plane error as a RESP error: a prefix a Redis
// client knows, and the gRPC port's message. TRYAGAIN (which Redis
// clients retry) only for an answer that says the command was not applied;
// a write whose outcome is unknown (no answer, a connection lost to the
// owner mid-call) is an ERR saying so. A read's error says nothing of
// writes.
func errorPrefix(err error, write bool) (prefix, msg string) {
	var ce *client.ConnectError
	if errors.As(err, &ce) {
		return "TRYAGAIN", "sluice: " + err.Error()
	}
	unknown := ""
	if write {
		unknown = "; the write may or may not have been applied"
	}
	st := status.Convert(err)
	msg = st.Message()
	switch st.Code() {
	case codes.Unavailable, codes.ResourceExhausted:
		for _, d := range st.Details() {
			if _, ok := d.(*sluicev1.NotApplied); ok {
				return "TRYAGAIN", msg + " (not applied)"
			}
		}
		if st.Code() == codes.Unavailable {
			return "ERR", "sluice: " + msg + unknown
		}
	case codes.FailedPrecondition:
		if isBadNode(err) {
			return "TRYAGAIN", msg + " (not applied)"
		}
	case codes.DeadlineExceeded:
		return "ERR", fmt.Sprintf("sluice: no answer within %v (%s)%s", forwardTimeout, msg, unknown)
	case codes.Canceled:
		return "ERR", "sluice: the node is shutting down (" + msg + ")" + unknown
	case codes.Unknown:
		if write && !strings.Contains(msg, "may or may not have been applied") {
			return "ERR", msg + unknown
		}
	}
	return "ERR", msg
}

func isInvalid(err error) bool { return status.Code(err) == codes.InvalidArgument }
