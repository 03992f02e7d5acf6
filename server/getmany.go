package server

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
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
	index []int
	keys  [][]byte
	// read reads the part at one point.
	read func(ctx context.Context, keys [][]byte) ([]kv.Read, error)
}

func (d *Data) GetMany(ctx context.Context, req *sluicev1.GetManyRequest) (*sluicev1.GetManyResponse, error) {
	if err := d.validateGetMany(req); err != nil {
		return nil, err
	}
	slots := d.Table().Slots()
	out := make([]*sluicev1.KeyRead, len(req.Keys))
	parts := map[any]*manyPart{}
	var order []*manyPart
	for i, key := range req.Keys {
		id, read, err := d.manyReader(ctx, key, req, slots)
		if err != nil {
			out[i] = &sluicev1.KeyRead{Error: keyError(err)}
			continue
		}
		pt := parts[id]
		if pt == nil {
			pt = &manyPart{read: read}
			parts[id] = pt
			order = append(order, pt)
		}
		pt.index = append(pt.index, i)
		pt.keys = append(pt.keys, key)
	}
	// Each partition's share in one step; the partitions in parallel.
	var wg sync.WaitGroup
	for j, pt := range order {
		run := func() {
			reads, err := pt.read(ctx, pt.keys)
			for k, i := range pt.index {
				if err != nil {
					out[i] = &sluicev1.KeyRead{Error: keyError(toStatus(err))}
					continue
				}
				out[i] = keyRead(reads[k])
			}
		}
		if j == len(order)-1 {
			run() // the last (often the only) part on this goroutine
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, toStatus(err)
	}
	budget := MaxGetManyValueBytes
	for i, r := range out {
		if budget -= len(r.Value); budget < 0 && r.Found {
			out[i] = &sluicev1.KeyRead{Error: &sluicev1.KeyError{Code: int32(codes.ResourceExhausted),
				Message: fmt.Sprintf("not read: the response's values reached the limit of %d bytes before this key; ask for it in another call", MaxGetManyValueBytes)}}
		}
	}
	return &sluicev1.GetManyResponse{Results: out}, nil
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
func (d *Data) manyReader(ctx context.Context, key []byte, req *sluicev1.GetManyRequest, slots int32) (any, func(context.Context, [][]byte) ([]kv.Read, error), error) {
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
		return rd, func(_ context.Context, keys [][]byte) ([]kv.Read, error) { return rd.ReadCommittedMany(keys) }, nil
	}
	return rd, func(ctx context.Context, keys [][]byte) ([]kv.Read, error) {
		waited := map[int32]bool{}
		for _, k := range keys {
			slot := keyspace.Slot(k, slots)
			if waited[slot] {
				continue
			}
			waited[slot] = true
			if err := rd.WaitApplied(ctx, slot, req.Session.GetOffsets()[slot]); err != nil {
				return nil, err
			}
		}
		return rd.ReadCommittedMany(keys)
	}, nil
}

func keyRead(r kv.Read) *sluicev1.KeyRead {
	if !r.Found {
		return &sluicev1.KeyRead{}
	}
	return &sluicev1.KeyRead{Found: true, Value: r.Value.Data, Version: r.Value.Version, Timestamp: r.Value.Timestamp}
}
