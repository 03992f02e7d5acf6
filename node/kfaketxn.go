package node

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kfake commits a transaction by writing its commit marker to each of the
// transaction's partitions in turn (pkg/kfake txns.go: endTx). A process
// killed in between leaves the transaction committed in some partitions and,
// once kfake restarts and aborts what it finds open (persist.go:
// loadPartitionFullReplay), aborted in the others: half a transaction. For
// sluice that is half a batch of one partition, or an ingest record whose
// consumption was recorded (the changelog's part) while its forwarding to the
// slot that owns its key was lost (the ingest topic's part) — an
// acknowledged write gone. And the abort kfake makes at restart has no
// marker and is not written down: after the next crash its batches read as
// part of the producer's next, committed, transaction.
//
// finishKfakeTransactions ends, before kfake starts, every transaction the
// log leaves open, as Kafka's coordinator would: one whose producer and epoch
// have a commit marker in another partition, written after the open batch
// was made, is committed there too (the commit was decided before its first
// marker); any other is aborted with a marker, and its producer's epoch
// bumped in pids.log (what kfake does when a transaction times out), so the
// log says what happened and a zombie of the producer is fenced. kfake gives
// each transaction an epoch of its own (EndTxn v5, franz-go's), so the
// producer and epoch name the transaction; the timestamps keep a marker of an
// earlier transaction of an older client, which reuses its epoch, from
// committing a later one.
func finishKfakeTransactions(dir string, now time.Time) (finished []string, err error) {
	parts, err := filepath.Glob(filepath.Join(dir, "partitions", "*"))
	if err != nil {
		return nil, err
	}
	pidsLog := filepath.Join(dir, "pids.log")
	epochs, pidsValid, err := readPIDEpochs(pidsLog)
	if err != nil {
		return nil, err
	}
	type txn struct {
		pid   int64
		epoch int16
	}
	logs := make(map[string][]batchHead, len(parts))
	committed := map[txn]int64{} // → the latest commit marker's time
	for _, p := range parts {
		bs, err := readBatchHeads(p)
		if err != nil {
			return nil, err
		}
		logs[p] = bs
		for _, b := range bs {
			if b.pid >= 0 {
				epochs[b.pid] = max(epochs[b.pid], b.epoch)
			}
			if b.control && b.commit {
				committed[txn{b.pid, b.epoch}] = max(committed[txn{b.pid, b.epoch}], b.maxTS)
			}
		}
	}
	fenced := map[int64]int16{} // producer → the epoch its open transaction was aborted with
	for _, p := range parts {
		bs := logs[p]
		open := map[int64]batchHead{} // producer → the first batch of its open transaction
		for _, b := range bs {
			switch o, in := open[b.pid]; {
			case b.control:
				delete(open, b.pid)
			case b.txn && (!in || o.epoch != b.epoch):
				open[b.pid] = b
			}
		}
		pids := make([]int64, 0, len(open))
		for pid := range open {
			pids = append(pids, pid)
		}
		slices.Sort(pids)
		for _, pid := range pids {
			o := open[pid]
			commit, epoch := false, o.epoch
			if at, ok := committed[txn{pid, o.epoch}]; ok && at >= o.firstTS {
				commit = true
			} else if pidsValid {
				if _, ok := fenced[pid]; !ok {
					fenced[pid] = epochs[pid] + 1
				}
				epoch = fenced[pid]
			} else {
				continue // pids.log in a format unknown here: kfake aborts it itself
			}
			last := bs[len(bs)-1]
			if err := appendFile(last.segment, marker(commit, pid, epoch, last.leaderEpoch, last.next, now)); err != nil {
				return finished, err
			}
			last.next++
			bs = append(bs, last)
			what := "aborted"
			if commit {
				what = "committed"
			}
			finished = append(finished, fmt.Sprintf("%s: producer %d epoch %d %s", filepath.Base(p), pid, o.epoch, what))
		}
	}
	ids := make([]int64, 0, len(fenced))
	for pid := range fenced {
		ids = append(ids, pid)
	}
	slices.Sort(ids)
	var entries []byte
	for _, pid := range ids {
		entries = appendPIDEntry(entries, pid, fenced[pid])
	}
	if len(entries) > 0 {
		if err := appendFile(pidsLog, entries); err != nil {
			return finished, err
		}
	}
	return finished, nil
}

func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pids.log is kfake's append log of producer ids (persist.go: writeEntry,
// readEntries): entries of [length][crc32c][version 1][JSON], little-endian.
type pidEntry struct {
	Type  string `json:"type"`
	PID   int64  `json:"pid"`
	Epoch int16  `json:"epoch"`
}

// readPIDEpochs returns each producer's last epoch in pids.log, and whether
// the log is in the format known here; it cuts a torn entry off its end, as
// kfake ignores one, so that what is appended after is read.
func readPIDEpochs(path string) (map[int64]int16, bool, error) {
	epochs := map[int64]int16{}
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return epochs, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	pos := 0
	for pos+10 <= len(raw) {
		n := int(binary.LittleEndian.Uint32(raw[pos:]))
		if n < 2 || pos+8+n > len(raw) || crc32.Checksum(raw[pos+8:pos+8+n], castagnoli) != binary.LittleEndian.Uint32(raw[pos+4:]) {
			break
		}
		if binary.LittleEndian.Uint16(raw[pos+8:]) != 1 {
			return epochs, false, nil
		}
		var e pidEntry
		if json.Unmarshal(raw[pos+10:pos+8+n], &e) == nil {
			epochs[e.PID] = max(epochs[e.PID], e.Epoch)
		}
		pos += 8 + n
	}
	if pos < len(raw) {
		if err := os.Truncate(path, int64(pos)); err != nil {
			return nil, false, err
		}
	}
	return epochs, true, nil
}

// appendPIDEntry appends to b the entry kfake writes when it aborts a timed
// out transaction: the producer's new epoch.
func appendPIDEntry(b []byte, pid int64, epoch int16) []byte {
	data, _ := json.Marshal(pidEntry{Type: "timeout", PID: pid, Epoch: epoch})
	body := binary.LittleEndian.AppendUint16(nil, 1)
	body = append(body, data...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
	return append(b, body...)
}

// batchHead is what finishKfakeTransactions needs of a record batch.
type batchHead struct {
	segment        string
	next           int64 // the offset after the batch
	pid            int64
	epoch          int16
	leaderEpoch    int32
	txn, control   bool
	commit         bool // a control batch's marker is a commit
	firstTS, maxTS int64
}

// readBatchHeads reads the whole batches of partition directory p's
// segments, in offset order.
func readBatchHeads(p string) ([]batchHead, error) {
	segs, err := filepath.Glob(filepath.Join(p, "*.dat"))
	if err != nil {
		return nil, err
	}
	base := func(s string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSuffix(filepath.Base(s), ".dat"), 10, 64)
		return n
	}
	slices.SortFunc(segs, func(a, b string) int { return int(base(a) - base(b)) })
	var out []batchHead
	for _, s := range segs {
		data, err := os.ReadFile(s)
		if err != nil {
			return nil, err
		}
		for len(data) >= 12 {
			size := 12 + int(int32(binary.BigEndian.Uint32(data[8:12])))
			if size < 61 || size > len(data) {
				break // torn: kfake truncates it
			}
			var b kmsg.RecordBatch
			if err := b.ReadFrom(data[:size]); err != nil || b.Magic != 2 {
				break
			}
			data = data[size:]
			h := batchHead{segment: s, next: b.FirstOffset + int64(b.LastOffsetDelta) + 1, pid: b.ProducerID, epoch: b.ProducerEpoch,
				leaderEpoch: b.PartitionLeaderEpoch, txn: b.Attributes&0x10 != 0, control: b.Attributes&0x20 != 0,
				firstTS: b.FirstTimestamp, maxTS: b.MaxTimestamp}
			if h.control {
				var r kmsg.Record
				var k kmsg.ControlRecordKey
				if r.ReadFrom(b.Records) == nil && k.ReadFrom(r.Key) == nil {
					h.commit = k.Type == kmsg.ControlRecordKeyTypeCommit
				}
			}
			out = append(out, h)
		}
	}
	return out, nil
}

// marker is a commit or abort marker batch of producer pid at offset, as
// kfake writes one (txns.go: txnMarkerBatch).
func marker(commit bool, pid int64, epoch int16, leaderEpoch int32, offset int64, now time.Time) []byte {
	key := kmsg.ControlRecordKey{Type: kmsg.ControlRecordKeyTypeAbort}
	if commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	marker := kmsg.EndTxnMarker{}
	rec := kmsg.Record{Key: key.AppendTo(nil), Value: marker.AppendTo(nil)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	ms := now.UnixMilli()
	b := kmsg.RecordBatch{
		FirstOffset: offset, PartitionLeaderEpoch: leaderEpoch, Magic: 2, Attributes: 0x30,
		FirstTimestamp: ms, MaxTimestamp: ms, ProducerID: pid, ProducerEpoch: epoch, FirstSequence: -1,
		NumRecords: 1, Records: rec.AppendTo(nil),
	}
	enc := b.AppendTo(nil)
	b.Length = int32(len(enc) - 12)
	enc = b.AppendTo(nil)
	binary.BigEndian.PutUint32(enc[17:21], crc32.Checksum(enc[21:], castagnoli))
	return enc
}
