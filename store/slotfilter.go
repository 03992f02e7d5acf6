package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"
)

// FilterSnapshot copies a snapshot stream (Snapshot's format, which
// LoadSnapshot reads) from r to w, keeping only the slots keep accepts: the
// data of the user keys whose slot (slotOf) it accepts, and the changelog and
// ingest offsets of those slots. The clock and the rest of the store's own
// metadata are left out; the clock is returned, so that a store loaded from
// several filtered streams (a partition whose slots several partitions held
// before) takes the highest of their clocks once, not the last one loaded.
func FilterSnapshot(w io.Writer, r io.Reader, slotOf func(key []byte) int32, keep func(slot int32) bool) (clock uint64, err error) {
	out := &pb.KVList{}
	size := 0
	flush := func() error {
		if len(out.Kv) == 0 {
			return nil
		}
		err := writeKVList(w, out)
		out.Kv, size = out.Kv[:0], 0
		return err
	}
	err = readKVLists(r, func(e *pb.KV) error {
		switch {
		case len(e.Key) > 0 && e.Key[0] == dataPrefix:
			if !keep(slotOf(e.Key[1:])) {
				return nil
			}
		case bytes.HasPrefix(e.Key, metaOffsetBase), bytes.HasPrefix(e.Key, metaIngestBase):
			if len(e.Key) != len(metaOffsetBase)+4 {
				return fmt.Errorf("store: bad offset entry %q", e.Key)
			}
			if !keep(int32(binary.BigEndian.Uint32(e.Key[len(e.Key)-4:]))) {
				return nil
			}
		case bytes.Equal(e.Key, metaClock) && len(e.Value) == 8:
			clock = max(clock, binary.BigEndian.Uint64(e.Value))
			return nil
		default:
			return nil
		}
		out.Kv = append(out.Kv, proto.Clone(e).(*pb.KV)) // e may share the reader's buffer
		if size += len(e.Key) + len(e.Value); size < 1<<20 && len(out.Kv) < 1000 {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, fmt.Errorf("store: filtering a snapshot by slot: %w", err)
	}
	return clock, nil
}
