package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/router"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// Data is the data-plane gRPC service. It validates a request, routes each
// key to its partition and hands the work to that partition's goroutine.
type Data struct {
	sluicev1.UnimplementedDataServer
	// Node is this node's id: partitions owned by another node get BadNode.
	Node string
	// Table returns the current routing table.
	Table func() *router.Table
	// TableConfirmed, if set, says whether GetRoutes may serve Table: nil
	// once the table is known to be the registry's latest, else why not
	// (the node cannot read the registry). GetRoutes then answers
	// UNAVAILABLE, and a client asks another node for the routes.
	TableConfirmed func(ctx context.Context) error
	// Local returns the partition with id if it is open on this node.
	Local func(id uint32) (*partition.Partition, bool)
	// Standby returns this node's standby of partition id, if it keeps one
	// and it serves reads (it has caught up with the changelog).
	Standby func(id uint32) (CommittedReader, bool)
	// Cluster is the cluster's identity (its name and its changelog topic's
	// Kafka id), written into session and page tokens so that a token of
	// another cluster is refused.
	Cluster string
	// Changelog, if set, serves Watch.
	Changelog Changelog
	// WatchRefused, if set, refuses Watch with FAILED_PRECONDITION and this
	// message: the node's mode has no changelog to watch.
	WatchRefused string
	// Stopping, if set, is closed when the node begins to shut down: watches
	// end then with UNAVAILABLE and the token to resume from elsewhere.
	Stopping <-chan struct{}
	// MaxWatches bounds the watches this node serves at once. Default 64.
	MaxWatches int
	// ReadMemory, if set, bounds the bytes of read responses the node holds
	// at once (and must be the data port's stats handler too, to give back
	// what a call holds when it ends).
	ReadMemory *ReadMemory
	// SessionWait bounds how long a SESSION read waits for its replica to
	// apply the token's offsets. Default DefaultSessionWait.
	SessionWait time.Duration

	watches atomic.Int32
}

// CommittedReader serves SESSION and EVENTUAL reads: a partition's owner or
// one of its standbys.
type CommittedReader interface {
	ReadCommitted(key []byte) (kv.Read, error)
	// ReadCommittedMany reads keys at one point, in order, until a value
	// does not fit in b (nil: every key): reads[i] is keys[i] for
	// i < len(reads).
	ReadCommittedMany(keys [][]byte, b *store.ReadBudget) ([]kv.Read, error)
	ScanCommitted(start, end []byte, fn func(key []byte, v kv.Value) bool) error
	WaitApplied(ctx context.Context, slot int32, offset int64) error
}

// routeRead finds the local replica (owner or standby) that may serve a
// SESSION or EVENTUAL read of key.
func (d *Data) routeRead(key []byte, hint *uint32) (CommittedReader, error) {
	t := d.Table()
	_, owner, ok := t.Lookup(key)
	if ok && (hint == nil || *hint == owner.ID) {
		if sb, err := d.standbyOf(owner); sb != nil || err != nil {
			return sb, err
		}
	}
	return d.route(key, hint)
}

// standbyOf is this node's standby of p when it serves reads; an error
// (UNAVAILABLE, NotApplied) when this node keeps one that has not caught up
// with the changelog yet (or is not open); neither when it keeps none.
func (d *Data) standbyOf(p router.Partition) (CommittedReader, error) {
	if p.Node == d.Node || d.Standby == nil || !slices.Contains(p.Standbys, d.Node) {
		return nil, nil
	}
	if sb, ok := d.Standby(p.ID); ok {
		return sb, nil
	}
	return nil, notApplied(codes.Unavailable, fmt.Sprintf("the standby of partition %d on node %s has not caught up with the changelog yet; read from the owner, %s", p.ID, d.Node, p.Node))
}

// route finds the local partition that owns key, or the error that says where
// to go instead. hint is the request's optional partition check.
func (d *Data) route(key []byte, hint *uint32) (*partition.Partition, error) {
	t := d.Table()
	slot, owner, ok := t.Lookup(key)
	if !ok {
		return nil, notApplied(codes.Unavailable, fmt.Sprintf("slot %d has no partition yet", slot))
	}
	if hint != nil {
		if _, known := t.ByID(*hint); !known {
			return nil, invalid("unknown partition %d", *hint)
		}
		if *hint != owner.ID {
			return nil, badNode(slot, owner, "the key is not in partition "+itoa(*hint))
		}
	}
	if owner.Node != d.Node {
		return nil, badNode(slot, owner, "not the owner")
	}
	p, ok := d.Local(owner.ID)
	if !ok {
		return nil, notApplied(codes.Unavailable, fmt.Sprintf("partition %d is not open on node %s yet", owner.ID, d.Node))
	}
	return p, nil
}

func (d *Data) Upsert(ctx context.Context, req *sluicev1.UpsertRequest) (*sluicev1.UpsertResponse, error) {
	entries := make([]kv.Entry, len(req.Entries))
	for i, e := range req.Entries {
		entries[i] = kv.Entry{Key: e.Key, Value: e.Value, TTL: time.Duration(e.TtlSeconds) * time.Second, Expected: e.ExpectedVersion}
	}
	// The whole batch is checked before any of it is applied.
	if err := kv.ValidateBatch(entries); err != nil {
		return nil, toStatus(err)
	}
	type part struct {
		p       *partition.Partition
		index   []int
		entries []kv.Entry
		err     error
	}
	var parts []*part
	byID := make(map[uint32]*part, 1)
	for i, e := range entries {
		p, err := d.route(e.Key, req.Partition)
		if err != nil {
			return nil, err
		}
		pt := byID[p.ID()]
		if pt == nil {
			pt = &part{p: p}
			byID[p.ID()] = pt
			parts = append(parts, pt)
		}
		pt.index = append(pt.index, i)
		pt.entries = append(pt.entries, e)
	}
	out := make([]*sluicev1.WriteResult, len(entries))
	if len(parts) == 1 {
		res, err := parts[0].p.Upsert(ctx, entries)
		if err != nil {
			return nil, toStatus(err)
		}
		for i, r := range res {
			out[i] = writeResult(r)
		}
		return &sluicev1.UpsertResponse{Results: out, Session: d.session(out...)}, nil
	}
	// Keys in several partitions: each part is atomic, the whole is not.
	done := make(chan struct{}, len(parts))
	for _, pt := range parts {
		go func() {
			res, err := pt.p.Upsert(ctx, pt.entries)
			for j, r := range res {
				out[pt.index[j]] = writeResult(r)
			}
			pt.err = err
			done <- struct{}{}
		}()
	}
	for range parts {
		<-done
	}
	var failures []*sluicev1.PartFailure
	var first error
	for _, pt := range parts {
		if pt.err == nil {
			continue
		}
		st := status.Convert(toStatus(pt.err))
		f := &sluicev1.PartFailure{Code: int32(st.Code()), Message: st.Message(), NotApplied: certainlyNotApplied(pt.err)}
		for _, i := range pt.index {
			f.Entries = append(f.Entries, uint32(i))
			out[i] = &sluicev1.WriteResult{}
		}
		failures = append(failures, f)
		if first == nil {
			first = st.Err()
		}
	}
	resp := &sluicev1.UpsertResponse{Results: out, Session: d.session(out...), Failures: failures}
	if len(failures) == len(parts) {
		// Nothing applied: the first part's error says what happened (with
		// NotApplied only if that part certainly did not apply; an unknown
		// outcome elsewhere is in no part's answer, so say UNKNOWN then).
		for _, f := range failures {
			if codes.Code(f.Code) == codes.Unknown {
				return nil, status.Error(codes.Unknown, f.Message)
			}
		}
		return nil, first
	}
	return resp, nil
}

// certainlyNotApplied says a write's error proves it was not applied: it is
// not an unknown commit outcome, and the caller did not stop waiting while
// the write may still have been on its way.
func certainlyNotApplied(err error) bool {
	return !errors.Is(err, wal.ErrCommitUnknown) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// session is the token of writes: the next offset each reached, per slot.
func (d *Data) session(results ...*sluicev1.WriteResult) *sluicev1.Session {
	s := &sluicev1.Session{Offsets: map[int32]int64{}, Cluster: d.Cluster}
	for _, r := range results {
		if r != nil {
			s.Offsets[r.Slot] = max(s.Offsets[r.Slot], r.Offset+1)
		}
	}
	return s
}

func (d *Data) Get(ctx context.Context, req *sluicev1.GetRequest) (*sluicev1.GetResponse, error) {
	if err := kv.ValidateKey(req.Key); err != nil {
		return nil, toStatus(err)
	}
	hold, done := d.ReadMemory.hold(ctx)
	defer done()
	if err := hold.take(ctx, kv.MaxBatchBytes); err != nil { // the largest value
		return nil, err
	}
	resp, err := d.get(ctx, req)
	if err != nil || !resp.Found {
		// Nothing to send but a few bytes: give the share back now, not at
		// the call's end (a RESP pipeline's calls end at its next flush).
		hold.keep(0)
		return resp, err
	}
	hold.keep(int64(len(resp.Value)))
	hold.sendHeld(resp) // until written to the connection
	return resp, nil
}

// get is Get's read, at the request's consistency level.
func (d *Data) get(ctx context.Context, req *sluicev1.GetRequest) (*sluicev1.GetResponse, error) {
	var r kv.Read
	switch req.Consistency {
	case sluicev1.Consistency_LINEARIZABLE:
		p, err := d.route(req.Key, req.Partition)
		if err != nil {
			return nil, err
		}
		if r, err = p.Get(ctx, req.Key); err != nil {
			return nil, toStatus(err)
		}
	case sluicev1.Consistency_SESSION, sluicev1.Consistency_EVENTUAL:
		rd, err := d.routeRead(req.Key, req.Partition)
		if err != nil {
			return nil, err
		}
		if req.Consistency == sluicev1.Consistency_SESSION {
			if err := d.checkSession(req.Session, "session"); err != nil {
				return nil, err
			}
			slot := keyspace.Slot(req.Key, d.Table().Slots())
			if err := d.sessionWait(req.Session).wait(ctx, rd, slot); err != nil {
				return nil, toStatus(err)
			}
		}
		if r, err = rd.ReadCommitted(req.Key); err != nil {
			return nil, toStatus(err)
		}
	default:
		return nil, invalid("unknown consistency level %d", req.Consistency)
	}
	if !r.Found {
		return &sluicev1.GetResponse{}, nil
	}
	v := r.Value
	return &sluicev1.GetResponse{Found: true, Value: v.Data, Version: v.Version, Timestamp: v.Timestamp}, nil
}

func (d *Data) Remove(ctx context.Context, req *sluicev1.RemoveRequest) (*sluicev1.RemoveResponse, error) {
	if err := kv.ValidateKey(req.Key); err != nil {
		return nil, toStatus(err)
	}
	p, err := d.route(req.Key, req.Partition)
	if err != nil {
		return nil, err
	}
	existed, res, err := p.Remove(ctx, req.Key)
	if err != nil {
		return nil, toStatus(err)
	}
	if !existed {
		return &sluicev1.RemoveResponse{}, nil
	}
	wr := writeResult(res)
	return &sluicev1.RemoveResponse{Existed: true, Result: wr, Session: d.session(wr)}, nil
}

func (d *Data) Increment(ctx context.Context, req *sluicev1.IncrementRequest) (*sluicev1.IncrementResponse, error) {
	if err := kv.ValidateKey(req.Key); err != nil {
		return nil, toStatus(err)
	}
	p, err := d.route(req.Key, req.Partition)
	if err != nil {
		return nil, err
	}
	n, res, err := p.Increment(ctx, req.Key, req.Delta, time.Duration(req.TtlSeconds)*time.Second)
	if err != nil {
		return nil, toStatus(err)
	}
	wr := writeResult(res)
	return &sluicev1.IncrementResponse{Value: n, Result: wr, Session: d.session(wr)}, nil
}

func writeResult(r partition.WriteResult) *sluicev1.WriteResult {
	return &sluicev1.WriteResult{Version: r.Version, Timestamp: r.Timestamp, Slot: r.Slot, Offset: r.Offset}
}

func (d *Data) GetRoutes(ctx context.Context, _ *sluicev1.GetRoutesRequest) (*sluicev1.Routes, error) {
	if d.TableConfirmed != nil {
		if err := d.TableConfirmed(ctx); err != nil {
			return nil, status.Errorf(codes.Unavailable, "node %s: its routing table may be stale, ask another node: %v", d.Node, err)
		}
	}
	t := d.Table()
	out := &sluicev1.Routes{Slots: t.Slots(), Cluster: d.Cluster}
	for _, p := range t.Partitions() {
		out.Routes = append(out.Routes, &sluicev1.Route{Partition: p.ID, From: p.Range.From, To: p.Range.To, Epoch: p.Epoch, Node: p.Node, Addr: p.Addr,
			Standbys: p.Standbys, StandbyAddrs: p.StandbyAddrs})
	}
	return out, nil
}
