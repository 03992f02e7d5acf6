package node

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"
)

// The embedded broker (kfake) appends each record batch to a segment file
// (<base>.dat) and then, in a second write, a 15-byte entry for it to the
// segment's index (<base>.idx), whose flag says whether the batch belongs to
// a transaction. A process killed between the two writes leaves the index one
// entry short, and every entry appended after it describes the batch before
// its own (pkg/kfake persist.go: persistBatchToSegment, loadSegmentBatches).
// At its next crash recovery kfake takes that flag, not the batch's own
// transactional bit, to find transactions left open
// (loadPartitionFullReplay): an open transaction's batch with no entry is
// read as committed, and a committed transaction as aborted. The crash loop
// lost an acknowledged ingest record that way.
//
// repairKfakeIndexes rewrites, before kfake starts, every index that does not
// match its segment, from the segment itself: a batch is in a transaction
// when it is transactional and not a control batch (kfake's own rule,
// 00_produce.go), its epoch is the partition leader epoch in its header, and
// the stored earliest timestamp is one kfake recomputes at load. An index in
// a format it does not know (a newer kfake) is left alone.
func repairKfakeIndexes(dir string) (repaired []string, err error) {
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
		want, ok := kfakeIndex(data, old)
		if !ok || bytes.Equal(want, old) {
			continue
		}
		if err := os.WriteFile(idx+".repair", want, 0o644); err != nil {
			return repaired, err
		}
		if err := os.Rename(idx+".repair", idx); err != nil {
			return repaired, err
		}
		repaired = append(repaired, idx)
	}
	return repaired, nil
}

const kfakeIndexEntry = 15

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// kfakeIndex is the index segment data should have; ok is false if old is
// in a format this does not know, or already matches.
func kfakeIndex(data, old []byte) (want []byte, ok bool) {
	if len(old)%kfakeIndexEntry != 0 {
		return nil, false
	}
	for i := 0; i < len(old); i += kfakeIndexEntry {
		if old[i] != 1 { // the entry format's version
			return nil, false
		}
	}
	for len(data) >= 23 {
		size := 12 + int(int32(binary.BigEndian.Uint32(data[8:12])))
		if size < 23 || size > len(data) {
			break // a torn batch at the end: kfake truncates it at load
		}
		attrs := binary.BigEndian.Uint16(data[21:23])
		var e [kfakeIndexEntry]byte
		e[0] = 1
		copy(e[2:6], []byte{data[15], data[14], data[13], data[12]}) // leader epoch, big- to little-endian
		if attrs&0x10 != 0 && attrs&0x20 == 0 {
			e[14] = 1
		}
		e[1] = byte(crc32.Checksum(e[2:], castagnoli))
		n := len(want)
		want = append(want, e[:]...)
		// Keep what kfake wrote where it agrees: only its earliest
		// timestamp differs, and kfake recomputes that.
		if n+kfakeIndexEntry <= len(old) && bytes.Equal(old[n+2:n+6], e[2:6]) && old[n+14] == e[14] {
			copy(want[n:], old[n:n+kfakeIndexEntry])
		}
		data = data[size:]
	}
	return want, true
}

// repairEmbeddedLog finishes, before the embedded broker starts, what a
// kill -9 left half done in its log: open transactions (committed where
// their commit was decided, else aborted, each with its marker), then
// segment indexes out of step with their segments.
func (n *Node) repairEmbeddedLog(dir string) error {
	finished, err := finishKfakeTransactions(dir, time.Now())
	if err != nil {
		return fmt.Errorf("node: checking the embedded broker's transactions: %w", err)
	}
	for _, f := range finished {
		n.cfg.Log.Warn().Str("transaction", f).Msg("embedded broker: ended a transaction a crash had left open")
	}
	repaired, err := repairKfakeIndexes(dir)
	if err != nil {
		return fmt.Errorf("node: checking the embedded broker's log: %w", err)
	}
	for _, idx := range repaired {
		n.cfg.Log.Warn().Str("index", idx).Msg("embedded broker: rebuilt a segment index a crash left out of step with its segment")
	}
	return nil
}
