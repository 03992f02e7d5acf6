package kfakerepair

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// kfake keeps each partition in <dir>/partitions/<topic>-<p>/ as segments
// <base>.dat of record batches in Kafka's wire format, each with an index
// <base>.idx (pkg/kfake persist.go: persistBatchToSegment).

// batch is what the repair needs of a record batch.
type batch struct {
	segment     string
	next        int64 // the offset after the batch
	pid         int64
	epoch       int16
	leaderEpoch int32
	txn         bool  // transactional
	control     bool  // a transaction marker
	commit      bool  // a marker that commits
	ts          int64 // FirstTimestamp: a marker's is the coordinator's clock
}

// partition is one partition directory's batches, in offset order.
type partition struct {
	dir     string
	name    string // <topic>-<p>
	segs    []string
	batches []batch
}

// readPartitions reads every partition of dir, cutting each segment at
// its first torn or corrupt batch, which kfake's loader would drop with
// everything after it (loadSegmentBatches): what the repair appends must
// come before nothing kfake will cut.
func readPartitions(dir string) (parts []partition, truncated []string, err error) {
	dirs, err := filepath.Glob(filepath.Join(dir, "partitions", "*"))
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		p := partition{dir: d, name: filepath.Base(d)}
		p.segs, err = segments(d)
		if err != nil {
			return nil, truncated, err
		}
		for _, s := range p.segs {
			data, err := os.ReadFile(s)
			if err != nil {
				return nil, truncated, err
			}
			valid := walkBatches(data, func(raw []byte, b *kmsg.RecordBatch) {
				p.batches = append(p.batches, head(s, b))
			})
			if valid < len(data) {
				if err := truncate(s, int64(valid)); err != nil {
					return nil, truncated, err
				}
				truncated = append(truncated, fmt.Sprintf("%s: %d bytes", s, len(data)-valid))
			}
		}
		parts = append(parts, p)
	}
	return parts, truncated, nil
}

// segments are partition directory d's segment files in offset order.
func segments(d string) ([]string, error) {
	segs, err := filepath.Glob(filepath.Join(d, "*.dat"))
	if err != nil {
		return nil, err
	}
	base := func(s string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSuffix(filepath.Base(s), ".dat"), 10, 64)
		return n
	}
	slices.SortFunc(segs, func(a, b string) int { return int(base(a) - base(b)) })
	return segs, nil
}

// walkBatches calls fn with each whole batch at the start of data whose CRC
// holds, as kfake's loader reads them, and returns how many bytes they
// take: the rest is a torn or corrupt tail.
func walkBatches(data []byte, fn func(raw []byte, b *kmsg.RecordBatch)) (valid int) {
	for valid+12 <= len(data) {
		n := int64(binary.BigEndian.Uint32(data[valid+8 : valid+12]))
		if n < 49 || n > 1<<30 || int64(valid)+12+n > int64(len(data)) {
			break
		}
		raw := data[valid : valid+12+int(n)]
		if binary.BigEndian.Uint32(raw[17:21]) != crc32.Checksum(raw[21:], castagnoli) {
			break
		}
		var b kmsg.RecordBatch
		if b.ReadFrom(raw) != nil || b.Magic != 2 {
			break
		}
		fn(raw, &b)
		valid += len(raw)
	}
	return valid
}

func head(segment string, b *kmsg.RecordBatch) batch {
	h := batch{segment: segment, next: b.FirstOffset + int64(b.LastOffsetDelta) + 1, pid: b.ProducerID, epoch: b.ProducerEpoch,
		leaderEpoch: b.PartitionLeaderEpoch, txn: b.Attributes&0x10 != 0, control: b.Attributes&0x20 != 0, ts: b.FirstTimestamp}
	if h.control {
		var r kmsg.Record
		var k kmsg.ControlRecordKey
		if r.ReadFrom(b.Records) == nil && k.ReadFrom(r.Key) == nil {
			h.commit = k.Type == kmsg.ControlRecordKeyTypeCommit
		}
	}
	return h
}

// truncate cuts file path to size and makes the cut durable.
func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// appendSync appends b to file path and makes it durable before the
// broker reads it.
func appendSync(path string, b []byte) error {
	return syncWrite(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, b)
}

// syncWrite writes b to path opened with flag and syncs it.
func syncWrite(path string, flag int, b []byte) error {
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// marker is a commit or abort marker batch of producer pid at offset, as
// kfake writes one (txns.go: txnMarkerBatch).
func marker(commit bool, pid int64, epoch int16, leaderEpoch int32, offset, ms int64) []byte {
	key := kmsg.ControlRecordKey{Type: kmsg.ControlRecordKeyTypeAbort}
	if commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	value := kmsg.EndTxnMarker{}
	rec := kmsg.Record{Key: key.AppendTo(nil), Value: value.AppendTo(nil)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
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
