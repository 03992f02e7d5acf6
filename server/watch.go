package server

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/wal"
)

// A Watch is served from the changelog, not from partitions: any node reads
// every slot of it (read_committed, so never an uncommitted change) and
// filters by prefix. Keys are hashed over slots, so a watch of any prefix
// reads the whole changelog; serving it on one node keeps one stream per
// watcher, and a partition that moves changes nothing for it (the changelog
// is the same topic whoever writes it). A node that shuts down ends its
// watches with UNAVAILABLE and the token to resume from; a client whose
// node died resumes on another with the last token it received.

// Changelog is the cluster's changelog as Watch reads it.
type Changelog interface {
	// Bounds returns, per slot, the log's start offset, its last stable
	// offset (where a read_committed reader is now) and its end.
	Bounds(ctx context.Context) (LogBounds, error)
	// Tail reads the committed records from the given next offsets, one
	// fetch at a time, until ctx ends or fn fails.
	Tail(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error) error
	// OffsetsAfter returns, per slot, the first offset of a record written
	// at or after t (the slot's end if there is none).
	OffsetsAfter(ctx context.Context, t time.Time) (map[int32]int64, error)
	// Retention is the changelog's delete.retention.ms: how long a removal's
	// tombstone outlives compaction. Zero: not known, not checked.
	Retention() time.Duration
}

// LogBounds are a changelog's offsets per slot.
type LogBounds struct {
	Start, Stable, End map[int32]int64
}

const (
	// DefaultMaxWatches bounds a node's watches (Data.MaxWatches).
	DefaultMaxWatches = 64
	// watchChunkBytes bounds the keys and values of one message (one event
	// over it goes alone): the same bound as a GetMany response's values,
	// within grpc-go's default 4 MiB receive limit.
	watchChunkBytes = MaxGetManyValueBytes
	// watchEventOverhead is what an event takes in a message besides its
	// key and value (at most 52 bytes of fields and framing): a message of
	// many small events is bounded too.
	watchEventOverhead = 64
	// watchProgressEvery spaces the messages that only move the token.
	watchProgressEvery = time.Second
)

func (d *Data) Watch(req *sluicev1.WatchRequest, stream grpc.ServerStreamingServer[sluicev1.WatchResponse]) error {
	if d.WatchRefused != "" {
		return status.Error(codes.FailedPrecondition, d.WatchRefused)
	}
	if d.Changelog == nil {
		return status.Error(codes.Unimplemented, "this node does not serve Watch")
	}
	limit := d.MaxWatches
	if limit == 0 {
		limit = DefaultMaxWatches
	}
	if n := d.watches.Add(1); int(n) > limit {
		d.watches.Add(-1)
		return notApplied(codes.ResourceExhausted, fmt.Sprintf("node %s serves at most %d watches at once; watch through another node", d.Node, limit))
	}
	defer d.watches.Add(-1)
	ctx := stream.Context()
	if err := d.checkSession(req.From, "from"); err != nil {
		return err
	}
	if len(req.Prefix) > 0 && req.Prefix[0] == 0 {
		return invalid("Watch prefix: keys starting with byte 0x00 are reserved for sluice")
	}
	pos, err := d.watchStart(ctx, req.From)
	if err != nil {
		return err
	}
	// A message in the making, held in the node's read memory for the
	// watch's life, taken at once (the message sent before it has left
	// when the next Send returns: gRPC's write quota).
	hold, done := d.ReadMemory.hold(ctx)
	defer done()
	if err := hold.take(ctx, watchChunkBytes); err != nil {
		return err
	}
	w := &watcher{d: d, stream: stream, prefix: req.Prefix, pos: pos}
	if err := w.send(nil); err != nil {
		return err
	}
	tailCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopping := make(chan struct{})
	go func() {
		select {
		case <-d.Stopping: // nil when unset: never
			close(stopping)
			cancel()
		case <-tailCtx.Done():
		}
	}()
	err = d.Changelog.Tail(tailCtx, maps.Clone(pos), w.batch)
	select {
	case <-stopping:
		return w.end(fmt.Sprintf("node %s is shutting down: resume from the token in this status's details on another node", d.Node))
	default:
	}
	if ctx.Err() != nil {
		return toStatus(ctx.Err())
	}
	if st, ok := status.FromError(err); ok && err != nil {
		return st.Err() // a failed Send
	}
	return w.end(fmt.Sprintf("reading the changelog: %v; resume from the token in this status's details", err))
}

// scanAgain is what a client does with a token the changelog cannot serve.
const scanAgain = "read the current state again (Scan) and watch from a token taken before that scan (a new watch's first message carries one)"

// watchStart checks a watch's start token against the changelog and
// completes it: a slot it does not name starts where read_committed readers
// are now.
func (d *Data) watchStart(ctx context.Context, from *sluicev1.Session) (map[int32]int64, error) {
	b, err := d.Changelog.Bounds(ctx)
	if err != nil {
		return nil, notApplied(codes.Unavailable, fmt.Sprintf("reading the changelog's offsets: %v", err))
	}
	slots := d.Table().Slots()
	pos := make(map[int32]int64, slots)
	var recent map[int32]int64 // the first offsets younger than the retention
	if ret := d.Changelog.Retention(); ret > 0 && len(from.GetOffsets()) > 0 {
		if recent, err = d.Changelog.OffsetsAfter(ctx, time.Now().Add(-ret)); err != nil {
			return nil, notApplied(codes.Unavailable, fmt.Sprintf("reading the changelog's offsets by time: %v", err))
		}
	}
	for slot, off := range from.GetOffsets() {
		switch {
		case slot < 0 || slot >= slots:
			return nil, invalid("from: slot %d is not one of the cluster's %d slots (a token of another cluster?)", slot, slots)
		case off < 0:
			return nil, invalid("from: slot %d has a negative offset %d", slot, off)
		case off > b.End[slot]:
			return nil, invalid("from: slot %d offset %d is past the changelog's end, %d (a token of another cluster?)", slot, off, b.End[slot])
		case off < b.Start[slot]:
			return nil, outOfRange("from: the changelog no longer holds slot %d from offset %d (it starts at %d): %s", slot, off, b.Start[slot], scanAgain)
		case recent != nil && off < b.End[slot] && off < recent[slot]:
			// Compaction does not move the log's start: it drops a
			// removal's tombstone once delete.retention.ms has passed, and
			// a watch from before it would never learn of the removal.
			return nil, outOfRange("from: slot %d offset %d is older than the changelog's delete.retention.ms (%s): removals since may have been compacted away; %s",
				slot, off, d.Changelog.Retention(), scanAgain)
		}
		pos[slot] = off
	}
	for slot := range slots {
		if _, ok := pos[slot]; !ok {
			pos[slot] = b.Stable[slot]
		}
	}
	return pos, nil
}

// watcher is one Watch stream: its prefix and how far it has delivered.
type watcher struct {
	d      *Data
	stream grpc.ServerStreamingServer[sluicev1.WatchResponse]
	prefix []byte
	pos    map[int32]int64 // next offset per slot, as far as sent
	moved  bool            // pos advanced past records not sent since the last message
	last   time.Time
}

// batch sends a fetch's changes under the prefix, in messages of at most
// watchChunkBytes, each with the token it reached; a fetch with none moves
// the token at most once a watchProgressEvery.
func (w *watcher) batch(b wal.Replayed) error {
	var events []*sluicev1.WatchEvent
	size := 0
	for _, r := range b.Records {
		c := r.Change
		if r.Kind == kv.KindChange && bytes.HasPrefix(c.Key, w.prefix) {
			n := len(c.Key) + len(c.Value) + watchEventOverhead
			if len(events) > 0 && size+n > watchChunkBytes {
				if err := w.send(events); err != nil {
					return err
				}
				events, size = nil, 0
			}
			events = append(events, &sluicev1.WatchEvent{Key: c.Key, Value: c.Value, Removed: c.Remove, Version: c.Version, Timestamp: c.Timestamp, Slot: r.Slot, Offset: r.Offset})
			size += n
		}
		// Marks and heartbeats carry no key; they only move the token.
		w.pos[r.Slot] = max(w.pos[r.Slot], r.Offset+1)
		w.moved = true
	}
	for slot, off := range b.Reached {
		if off > w.pos[slot] {
			w.pos[slot] = off
			w.moved = true
		}
	}
	if len(events) == 0 && (!w.moved || time.Since(w.last) < watchProgressEvery) {
		return nil
	}
	return w.send(events)
}

func (w *watcher) send(events []*sluicev1.WatchEvent) error {
	w.moved, w.last = false, time.Now()
	return w.stream.Send(&sluicev1.WatchResponse{Events: events, Session: w.token()})
}

func (w *watcher) token() *sluicev1.Session {
	return &sluicev1.Session{Offsets: maps.Clone(w.pos), Cluster: w.d.Cluster}
}

// end is the UNAVAILABLE that ends a watch, with the token to resume from.
func (w *watcher) end(msg string) error { return resumeFrom(msg, w.token()) }
