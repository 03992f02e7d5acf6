package kfakerepair

import (
	"bytes"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kfake appends each record batch to a segment file (<base>.dat) and then,
// in a second write, a 15-byte entry for it to the segment's index
// (<base>.idx), whose flag says whether the batch belongs to a
// transaction. A process killed between the two writes leaves the index one
// entry short, and every entry appended after it describes the batch before
// its own (pkg/kfake persist.go: persistBatchToSegment, loadSegmentBatches).
// At its next crash recovery kfake takes that flag, not the batch's own
// transactional bit, to find transactions left open
// (loadPartitionFullReplay): an open transaction's batch with no entry is
// read as committed, and a committed transaction as aborted. The crash loop
// lost an acknowledged ingest record that way. The markers the repair
// appends have no entry either.
//
// repairIndexes rewrites every index that does not match its segment, from
// the segment itself: a batch is in a transaction when it is transactional
// and not a control batch (kfake's own rule, 00_produce.go), its epoch is
// the partition leader epoch in its header, and the stored earliest
// timestamp is one kfake recomputes at load. An index in a format it does
// not know (a newer kfake) is left alone.
func repairIndexes(dir string) (repaired []string, err error) {
	segs, err := filepath.Glob(filepath.Join(dir, "partitions", "*", "*.dat"))
	if err != nil {
		return nil, err
	}
	for _, seg := range segs {
		idx := seg[:len(seg)-len(".dat")] + ".idx"
		data, err := os.ReadFile(seg)
		if err != nil {
			return repaired, err
		}
		old, err := os.ReadFile(idx)
		if err != nil && !os.IsNotExist(err) {
			return repaired, err
		}
		want, ok := index(data, old)
		if !ok || bytes.Equal(want, old) {
			continue
		}
		if err := writeSync(idx+".repair", want); err != nil {
			return repaired, err
		}
		if err := os.Rename(idx+".repair", idx); err != nil {
			return repaired, err
		}
		repaired = append(repaired, idx)
	}
	return repaired, nil
}

// indexEntry is the size of an index entry.
const indexEntry = 15

// index is the index segment data should have; ok is false if old is in a
// format this does not know.
func index(data, old []byte) (want []byte, ok bool) {
	if len(old)%indexEntry != 0 {
		return nil, false
	}
	for i := 0; i < len(old); i += indexEntry {
		if old[i] != 1 { // the entry format's version
			return nil, false
		}
	}
	want = []byte{}
	walkBatches(data, func(raw []byte, b *kmsg.RecordBatch) {
		var e [indexEntry]byte
		e[0] = 1
		copy(e[2:6], []byte{raw[15], raw[14], raw[13], raw[12]}) // leader epoch, big- to little-endian
		if b.Attributes&0x10 != 0 && b.Attributes&0x20 == 0 {
			e[14] = 1
		}
		e[1] = byte(crc32.Checksum(e[2:], castagnoli))
		n := len(want)
		want = append(want, e[:]...)
		// Keep what kfake wrote where it agrees: only its earliest
		// timestamp differs, and kfake recomputes that.
		if n+indexEntry <= len(old) && bytes.Equal(old[n+2:n+6], e[2:6]) && old[n+14] == e[14] {
			copy(want[n:], old[n:n+indexEntry])
		}
	})
	return want, true
}

// writeSync replaces path's content with b, synced.
func writeSync(path string, b []byte) error {
	return syncWrite(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, b)
}
