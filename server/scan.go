package server

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/pagetoken"
	"github.com/sluicedb/sluice/partition"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A Scan streams, in key order, the keys of a prefix or range from the
// partitions this node serves. Keys are hashed over slots, so every
// partition holds part of any range: each partition's part is read from
// its own store read transaction (one point per partition) and the parts
// are merged here; the Go client merges the nodes' streams the same way.
// Memory is bounded whatever the range: one entry per partition and one
// message in the making, and Send blocks while the client's flow-control
// window is full (the iterators, and their read transactions, wait).

// Bounds of a Scan's messages.
const (
	scanChunkEntries = 512
	scanChunkBytes   = 256 << 10
	// scanEntryMax is the most bytes of one entry: a key and a value.
	scanEntryMax = kv.MaxKeyBytes + kv.MaxBatchBytes
)

// scanRange is what a Scan reads: [lo, hi) (hi nil: no upper bound), and the
// digest of the prefix or range the caller named, for page tokens.
type scanRange struct {
	lo, hi []byte
	digest [8]byte
	empty  bool
}

// scanPart is one partition's part: who reads it and how it gets ready.
type scanPart struct {
	id   uint32
	rd   CommittedReader
	prep func(ctx context.Context) error
}

func (d *Data) Scan(req *sluicev1.ScanRequest, stream grpc.ServerStreamingServer[sluicev1.ScanResponse]) error {
	ctx := stream.Context()
	rg, err := d.scanRange(req)
	if err != nil {
		return err
	}
	parts, err := d.scanParts(req)
	if err != nil {
		return err
	}
	// Consistency first, for every part, before any read transaction opens.
	for _, pt := range parts {
		if err := pt.prep(ctx); err != nil {
			return toStatus(fmt.Errorf("partition %d: %w", pt.id, err))
		}
	}
	ids := make([]uint32, len(parts))
	for i, pt := range parts {
		ids[i] = pt.id
	}
	first := &sluicev1.ScanResponse{Partitions: ids}
	if rg.empty {
		return stream.Send(first)
	}
	// The most a scan holds, taken from the node's read memory at once
	// before it reads (a scan that took it entry by entry could wait for
	// more while holding some, and scans waiting on each other starved):
	// an entry per partition, the message in the making and the last one
	// sent (gRPC's write quota lets it go when the next Send returns).
	hold, done := d.ReadMemory.hold(ctx)
	defer done()
	if err := hold.take(ctx, int64(len(parts)+2)*scanEntryMax+scanChunkBytes); err != nil {
		return err
	}
	advance := (*scanHead).advance
	heads := make([]*scanHead, 0, len(parts))
	for _, pt := range parts {
		next, stop := iter.Pull2(scanSeq(pt.rd, rg.lo, rg.hi))
		defer stop()
		h := &scanHead{id: pt.id, next: next}
		if err := advance(h); err != nil {
			return err
		}
		heads = append(heads, h)
	}
	limit := int(req.Limit)
	msg, size, sent := first, 0, 0
	flush := func(more bool) error {
		if n := len(msg.Entries); n > 0 {
			msg.PageToken = pagetoken.Encode(pagetoken.Token{Cluster: d.Cluster, Range: rg.digest, After: msg.Entries[n-1].Key})
		}
		msg.More = more
		err := stream.Send(msg)
		msg, size = &sluicev1.ScanResponse{}, 0
		return err
	}
	for {
		h := lowest(heads)
		if h == nil {
			return flush(false)
		}
		if limit > 0 && sent == limit {
			return flush(true)
		}
		msg.Entries = append(msg.Entries, &sluicev1.ScanEntry{Key: h.key, Value: h.val.Data, Version: h.val.Version, Timestamp: h.val.Timestamp})
		size += len(h.key) + len(h.val.Data)
		sent++
		if err := advance(h); err != nil {
			return err
		}
		if len(msg.Entries) >= scanChunkEntries || size >= scanChunkBytes {
			if err := flush(false); err != nil {
				return err
			}
		}
	}
}

// scanHead is a partition's iterator and the entry it is at.
type scanHead struct {
	id   uint32
	next func() (scanItem, error, bool)
	key  []byte
	val  kv.Value
	done bool
}

type scanItem struct {
	key []byte
	val kv.Value
}

func (h *scanHead) advance() error {
	it, err, ok := h.next()
	if err != nil {
		return toStatus(fmt.Errorf("partition %d: reading the store: %w", h.id, err))
	}
	h.done = !ok
	h.key, h.val = it.key, it.val
	return nil
}

// lowest is the head with the smallest key; nil when all are done. A node
// holds a few partitions: a linear pass beats a heap.
func lowest(heads []*scanHead) *scanHead {
	var min *scanHead
	for _, h := range heads {
		if !h.done && (min == nil || bytes.Compare(h.key, min.key) < 0) {
			min = h
		}
	}
	return min
}

// scanSeq is a replica's committed keys of [lo, hi) as an iterator: pulled
// one at a time, with its read transaction open until it ends or is stopped.
func scanSeq(rd CommittedReader, lo, hi []byte) iter.Seq2[scanItem, error] {
	return func(yield func(scanItem, error) bool) {
		more := true
		err := rd.ScanCommitted(lo, hi, func(k []byte, v kv.Value) bool {
			more = yield(scanItem{k, v}, nil)
			return more
		})
		if err != nil && more {
			yield(scanItem{}, err)
		}
	}
}

// scanRange checks what a Scan names and where it resumes.
func (d *Data) scanRange(req *sluicev1.ScanRequest) (scanRange, error) {
	var rg scanRange
	hasRange := len(req.Start) > 0 || len(req.End) > 0
	switch {
	case len(req.Prefix) > 0 && hasRange:
		return rg, invalid("Scan takes a prefix or a range [start, end), not both")
	case len(req.Prefix) == 0 && !hasRange:
		return rg, invalid("Scan needs a prefix or a range [start, end): an empty prefix would read every key of the cluster (to do that on purpose, scan the range from start \"\\x01\")")
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{"prefix", req.Prefix}, {"start", req.Start}, {"end", req.End}} {
		if len(f.b) > kv.MaxKeyBytes {
			return rg, invalid("Scan %s of %d bytes is over the limit of %d bytes", f.name, len(f.b), kv.MaxKeyBytes)
		}
	}
	if len(req.End) > 0 && bytes.Compare(req.End, req.Start) <= 0 {
		return rg, invalid("Scan end %q must be after start %q", req.End, req.Start)
	}
	if req.Consistency > sluicev1.Consistency_EVENTUAL || req.Consistency < 0 {
		return rg, invalid("unknown consistency level %d", req.Consistency)
	}
	if err := d.checkSession(req.Session, "session"); err != nil {
		return rg, err
	}
	rg.digest = pagetoken.RangeOf(req.Prefix, req.Start, req.End)
	rg.lo, rg.hi = req.Start, req.End
	if len(req.Prefix) > 0 {
		rg.lo, rg.hi = req.Prefix, prefixEnd(req.Prefix)
	}
	if len(req.PageToken) > 0 {
		t, err := pagetoken.Decode(req.PageToken)
		if err != nil {
			return rg, invalid("page token: %v", err)
		}
		if t.Cluster != d.Cluster {
			return rg, invalid("page token: made by cluster %q, this is cluster %q", t.Cluster, d.Cluster)
		}
		if t.Range != rg.digest || bytes.Compare(t.After, rg.lo) < 0 || (rg.hi != nil && bytes.Compare(t.After, rg.hi) >= 0) {
			return rg, invalid("page token: made for another prefix or range than this scan's")
		}
		rg.lo = append(bytes.Clone(t.After), 0) // the next key after it
	}
	rg.empty = rg.hi != nil && bytes.Compare(rg.lo, rg.hi) >= 0
	return rg, nil
}

// prefixEnd is the first key after every key starting with prefix; nil if
// none (a prefix of 0xff bytes only).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// scanParts resolves the partitions a Scan reads on this node, each with
// what its consistency level asks before its read transaction opens.
func (d *Data) scanParts(req *sluicev1.ScanRequest) ([]scanPart, error) {
	t := d.Table()
	ids := slices.Clone(req.Partitions)
	if len(ids) == 0 {
		for _, p := range t.Partitions() {
			if p.Node == d.Node {
				ids = append(ids, p.ID)
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var parts []scanPart
	session := d.sessionWait(req.Session) // the parts' waits share one deadline
	for _, id := range ids {
		p, ok := t.ByID(id)
		if !ok {
			return nil, invalid("unknown partition %d", id)
		}
		slot := p.Range.From
		if p.Node == d.Node {
			lp, ok := d.Local(id)
			if !ok {
				return nil, notApplied(codes.Unavailable, fmt.Sprintf("partition %d is not open on node %s yet", id, d.Node))
			}
			parts = append(parts, scanPart{id: id, rd: lp, prep: d.scanPrep(req, session, lp, lp, p.Range)})
			continue
		}
		if req.Consistency != sluicev1.Consistency_LINEARIZABLE {
			sb, err := d.standbyOf(p)
			if err != nil {
				return nil, err
			}
			if sb != nil {
				parts = append(parts, scanPart{id: id, rd: sb, prep: d.scanPrep(req, session, nil, sb, p.Range)})
				continue
			}
		}
		return nil, badNode(slot, p, fmt.Sprintf("partition %d is not served here", id))
	}
	return parts, nil
}

// scanPrep is what a part does before it reads: LINEARIZABLE passes a no-op
// through the partition's inbox, which answers once everything acknowledged
// before it is durable, and the loop applies a committed group to the store
// before it takes the next request, so the store then holds every write
// acknowledged before the scan started; SESSION waits until the replica has
// applied the session's offsets of the partition's slots.
func (d *Data) scanPrep(req *sluicev1.ScanRequest, session *sessionWait, owner *partition.Partition, rd CommittedReader, r keyspace.Range) func(context.Context) error {
	return func(ctx context.Context) error {
		if owner != nil {
			if _, err := owner.ReadCommittedMany(nil, nil); err != nil { // not serving: says why
				return err
			}
		}
		switch req.Consistency {
		case sluicev1.Consistency_LINEARIZABLE:
			_, err := owner.GetMany(ctx, nil, nil)
			return err
		case sluicev1.Consistency_SESSION:
			for slot := range req.Session.GetOffsets() {
				if r.Contains(slot) {
					if err := session.wait(ctx, rd, slot); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
}
