package kfakerepair

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offsets a crash may have taken back are never given out again.
//
// kfake does not sync its segments, so a power cut or a full disk can lose
// a partition's tail (torn, or cut cleanly at a batch) that a node had
// already read: an ingest record it applied, a changelog record its store
// holds. kfake would then give the lost offsets to the next records, and a
// node whose position is past them skips those records without a word
// (an outside tester saw three kcat records, acknowledged after the
// restart, never applied, with an ingest lag of 0).
//
// So the repair moves past gapOffsets unused offsets every partition kfake
// may have written since it was last closed cleanly: an empty batch spanning
// them, the shape Kafka's compaction leaves (KAFKA-5443). Readers move past
// it, kfake writes after it, and no offset a reader may hold is written
// again. A gap costs nothing but offsets: 2^30 a crash leaves room for 2^33
// crashes.
//
// Whether kfake may have written is never read from the segments' sizes: a
// power cut can take a log back to exactly the sizes a snapshot or a repair
// saw, with offsets after them already read (an outside tester's cut back to
// the repaired sizes made the node skip ingest records, or never serve). It
// is what the state file says: Opening writes "running", synced, before
// kfake starts; a repair leaves "repaired" (a second repair before kfake runs
// again adds no second gap); Closed removes it after a clean close. Without
// the file (a clean close, or a log older than it) a partition is moved
// unless kfake's snapshot.json matches its segments.
const gapOffsets = 1 << 30

// stateFile is the state file in kfake's data directory.
const stateFile = "sluice-state"

const (
	stateRunning  = "running"
	stateRepaired = "repaired"
)

// Opening records, synced, that kfake is about to run on dir: until the next
// repair, any partition may have been written. Call it before starting kfake.
func Opening(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeState(dir, stateRunning)
}

// Closed records that kfake closed dir cleanly (its snapshot.json files
// describe its segments). Call it after kfake's Close.
func Closed(dir string) error {
	if err := os.Remove(filepath.Join(dir, stateFile)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return syncDir(dir)
}

func readState(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// writeState replaces dir's state file, synced with its directory.
func writeState(dir, state string) error {
	path := filepath.Join(dir, stateFile)
	if err := writeSync(path+".tmp", []byte(state+"\n")); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// skipTakenBack appends a gap to each partition of parts kfake may have
// written since it was closed cleanly (state: dir's state file), and notes
// it in the partition's batches (so that markers the repair appends go
// after it).
func skipTakenBack(parts []partition, state string, now int64) (skipped []string, err error) {
	if state == stateRepaired {
		return nil, nil // kfake has not run since the last repair
	}
	for i := range parts {
		p := &parts[i]
		if len(p.segs) == 0 {
			continue
		}
		if state != stateRunning {
			sizes, err := segmentSizes(p.segs)
			if err != nil {
				return skipped, err
			}
			if matchesSnapshot(p.dir, sizes) {
				continue
			}
		}
		seg := p.segs[len(p.segs)-1]
		next, leaderEpoch := segmentBase(seg), int32(0)
		if n := len(p.batches); n > 0 {
			next, leaderEpoch = p.batches[n-1].next, p.batches[n-1].leaderEpoch
		}
		if err := appendSync(seg, gap(next, leaderEpoch, now)); err != nil {
			return skipped, err
		}
		p.batches = append(p.batches, batch{segment: seg, next: next + gapOffsets, pid: -1, epoch: -1, leaderEpoch: leaderEpoch, ts: now})
		skipped = append(skipped, fmt.Sprintf("%s: offsets %d to %d", p.name, next, next+gapOffsets-1))
	}
	return skipped, nil
}

// segmentSizes maps each segment's base offset to its size.
func segmentSizes(segs []string) (map[int64]int64, error) {
	sizes := make(map[int64]int64, len(segs))
	for _, s := range segs {
		info, err := os.Stat(s)
		if err != nil {
			return nil, err
		}
		sizes[segmentBase(s)] = info.Size()
	}
	return sizes, nil
}

func segmentBase(seg string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(filepath.Base(seg), ".dat"), 10, 64)
	return n
}

// matchesSnapshot: kfake closed the partition cleanly and nothing wrote
// to it since (kfake's own test for using its snapshot: persist.go,
// snapshotMatchesSegments).
func matchesSnapshot(dir string, sizes map[int64]int64) bool {
	raw, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		return false
	}
	var snap struct {
		Segments []struct {
			BaseOffset int64 `json:"base_offset"`
			Size       int64 `json:"size"`
		} `json:"segments"`
	}
	if json.Unmarshal(raw, &snap) != nil || len(snap.Segments) != len(sizes) {
		return false
	}
	for _, s := range snap.Segments {
		if size, ok := sizes[s.BaseOffset]; !ok || size != s.Size {
			return false
		}
	}
	return true
}

// gap is an empty record batch spanning gapOffsets offsets from offset.
func gap(offset int64, leaderEpoch int32, ms int64) []byte {
	b := kmsg.RecordBatch{
		FirstOffset: offset, PartitionLeaderEpoch: leaderEpoch, Magic: 2, LastOffsetDelta: gapOffsets - 1,
		FirstTimestamp: ms, MaxTimestamp: ms, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
	}
	enc := b.AppendTo(nil)
	b.Length = int32(len(enc) - 12)
	enc = b.AppendTo(nil)
	binary.BigEndian.PutUint32(enc[17:21], crc32.Checksum(enc[21:], castagnoli))
	return enc
}
