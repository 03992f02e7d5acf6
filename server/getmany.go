package server

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/store"
)

// Limits of one GetMany.
const (
	// MaxGetManyKeys bounds the keys of one call.
	MaxGetManyKeys = 1000
	// MaxGetManyKeyBytes bounds the keys of one call together.
	MaxGetManyKeyBytes = kv.MaxBatchBytes
	// MaxGetManyValueBytes bounds the values of one response: keys after it
	// is reached get a RESOURCE_EXHAUSTED KeyError (ask again for them), so a
	// response stays within grpc-go's default 4 MiB receive limit.
	MaxGetManyValueBytes = 3 << 20
)

// manyPart is the keys of one partition (or one standby) in a GetMany.
type manyPart struct {
	index []int // into the call's distinct keys
	keys  [][]byte
	// read reads the part at one point, in order, until a value does not
	// fit in the budget: reads[i] is keys[i] for i < len(reads).
	read func(ctx context.Context, keys [][]byte, b *store.ReadBudget) ([]kv.Read, error)
}

// GetMany answers each key of the call, in the call's order. A key named
// twice is read once. Values are bounded while they are read, not after:
// the partitions' reads share one budget of MaxGetManyValueBytes, each stops
// before the first value that does not fit, and the keys not read are
// answered RESOURCE_EXHAUSTED (ask again); the response, where a key named
// n times holds its value n times, is held to the same limit. So one call
// makes a node hold a few times the limit at most, whatever it names.
func (d *Data) GetMany(ctx context.Context, req *sluicev1.GetManyRequest) (*sluicev1.GetManyResponse, error) {
	if err := d.validateGetMany(req); err != nil {
		return nil, err
	}
	hold, done := d.ReadMemory.hold(ctx)
	defer done()
	if err := hold.take(ctx, MaxGetManyValueBytes); err != nil {
		return nil, err
	}
	slots := d.Table().Slots()
	distinct, of := dedupe(req.Keys)
	got := make([]*sluicev1.KeyRead, len(distinct))
	parts := map[any]*manyPart{}
	var order []*manyPart
	for j, key := range distinct {
		id, read, err := d.manyReader(ctx, key, req, slots)
		if err != nil {
			got[j] = &sluicev1.KeyRead{Error: keyError(err)}
			continue
		}
		pt := parts[id]
		if pt == nil {
			pt = &manyPart{read: read}
			parts[id] = pt
			order = append(order, pt)
		}
		pt.index = append(pt.index, j)
		pt.keys = append(pt.keys, key)
	}
	// Each partition's share in one step; the partitions in parallel.
	budget := store.NewReadBudget(MaxGetManyValueBytes)
	var wg sync.WaitGroup
	var refusedOnce sync.Once
	var refused error // bad input found while reading (a session token past the changelog's end)
	for k, pt := range order {
		run := func() {
			reads, err := pt.read(ctx, pt.keys, budget)
			if status.Code(err) == codes.InvalidArgument {
				refusedOnce.Do(func() { refused = err })
			}
			for n, j := range pt.index {
				switch {
				case err != nil:
					got[j] = &sluicev1.KeyRead{Error: keyError(toStatus(err))}
				case n < len(reads):
					got[j] = keyRead(reads[n])
				default:
					got[j] = overLimit()
				}
			}
		}
		if k == len(order)-1 {
			run() // the last (often the only) part on this goroutine
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	if refused != nil {
		return nil, refused
	}
	if err := ctx.Err(); err != nil {
		return nil, toStatus(err)
	}
	// The response, in the call's order: a value counts each time it is
	// sent (a linearizable read may also answer a value just written, from
	// the partition's pending writes, which no read budget counted).
	out := make([]*sluicev1.KeyRead, len(req.Keys))
	sent := make([]bool, len(distinct))
	left := MaxGetManyValueBytes
	for i, j := range of {
		r := got[j]
		if r.Found && len(r.Value) > left { // a refused copy spends nothing
			out[i] = overLimit()
			continue
		}
		left -= len(r.Value)
		if sent[j] { // a key named again: its own message, the value's bytes shared
			r = &sluicev1.KeyRead{Found: r.Found, Value: r.Value, Version: r.Version, Timestamp: r.Timestamp, Error: r.Error}
		}
		sent[j] = true
		out[i] = r
	}
	resp := &sluicev1.GetManyResponse{Results: out}
	hold.keep(int64(MaxGetManyValueBytes - left))
	hold.sendHeld(resp) // until written to the connection
	return resp, nil
}

// dedupe returns keys without repeats, in the order of their first
// mention, and of: of[i] is the index in distinct of keys[i].
func dedupe(keys [][]byte) (distinct [][]byte, of []int) {
	of = make([]int, len(keys))
	first := make(map[string]int, len(keys))
	for i, key := range keys {
		j, ok := first[string(key)]
		if !ok {
			j = len(distinct)
			first[string(key)] = j
			distinct = append(distinct, key)
		}
		of[i] = j
	}
	return distinct, of
}

// overLimit answers a key the response had no room for.
func overLimit() *sluicev1.KeyRead {
	return &sluicev1.KeyRead{Error: &sluicev1.KeyError{Code: int32(codes.ResourceExhausted),
		Message: fmt.Sprintf("not read: the response's values reached the limit of %d bytes before this key; ask for it in another call", MaxGetManyValueBytes)}}
}

func (d *Data) validateGetMany(req *sluicev1.GetManyRequest) error {
	switch n := len(req.Keys); {
	case n == 0:
		return invalid("GetMany needs at least one key")
	case n > MaxGetManyKeys:
		return invalid("GetMany takes at most %d keys per call, got %d", MaxGetManyKeys, n)
	}
	total := 0
	for i, k := range req.Keys {
		if err := kv.ValidateKey(k); err != nil {
			return invalid("key %d: %v", i, err)
		}
		total += len(k)
	}
	if total > MaxGetManyKeyBytes {
		return invalid("GetMany takes at most %d bytes of keys per call (1 MiB), got %d", MaxGetManyKeyBytes, total)
	}
	if req.Consistency > sluicev1.Consistency_EVENTUAL || req.Consistency < 0 {
		return invalid("unknown consistency level %d", req.Consistency)
	}
	return d.checkSession(req.Session, "session")
}

// manyReader finds who reads key for a GetMany: an id grouping the keys of
// one replica, and how that replica reads them at one point.
func (d *Data) manyReader(ctx context.Context, key []byte, req *sluicev1.GetManyRequest, slots int32) (any, func(context.Context, [][]byte, *store.ReadBudget) ([]kv.Read, error), error) {
	if req.Consistency == sluicev1.Consistency_LINEARIZABLE {
		p, err := d.route(key, nil)
		if err != nil {
			return nil, nil, err
		}
		return p, p.GetMany, nil
	}
	rd, err := d.routeRead(key, nil)
	if err != nil {
		return nil, nil, err
	}
	if req.Consistency == sluicev1.Consistency_EVENTUAL {
		return rd, func(_ context.Context, keys [][]byte, b *store.ReadBudget) ([]kv.Read, error) {
			return rd.ReadCommittedMany(keys, b)
		}, nil
	}
	return rd, func(ctx context.Context, keys [][]byte, b *store.ReadBudget) ([]kv.Read, error) {
		w := d.sessionWait(req.Session)
		waited := map[int32]bool{}
		for _, k := range keys {
			slot := keyspace.Slot(k, slots)
			if waited[slot] {
				continue
			}
			waited[slot] = true
			if err := w.wait(ctx, rd, slot); err != nil {
				return nil, err
			}
		}
		return rd.ReadCommittedMany(keys, b)
	}, nil
}

func keyRead(r kv.Read) *sluicev1.KeyRead {
	if !r.Found {
		return &sluicev1.KeyRead{}
	}
	return &sluicev1.KeyRead{Found: true, Value: r.Value.Data, Version: r.Value.Version, Timestamp: r.Value.Timestamp}
}
