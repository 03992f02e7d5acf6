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
// So the repair moves every partition written since kfake last closed it
// cleanly (its snapshot.json no longer matches its segments) or since the
// last repair, past gapOffsets unused offsets: an empty batch spanning them,
// the shape Kafka's compaction leaves (KAFKA-5443). Readers move past it,
// kfake writes after it, and no offset a reader may hold is written again.
// A gap costs nothing but offsets: 2^30 a crash leaves room for 2^33
// crashes.
const gapOffsets = 1 << 30

// repairedFile records, in a partition's directory, the size of each
// segment when the last repair finished: a repair of a log nothing wrote
// since adds no second gap. kfake reads only its own files there.
const repairedFile = "sluice-repaired.json"

// skipTakenBack appends a gap to each partition of parts written since it
// was closed cleanly or repaired, and notes it in the partition's batches
// (so that markers the repair appends go after it).
func skipTakenBack(parts []partition, now int64) (skipped []string, err error) {
	for i := range parts {
		p := &parts[i]
		if len(p.segs) == 0 {
			continue
		}
		sizes, err := segmentSizes(p.segs)
		if err != nil {
			return skipped, err
		}
		if matchesSnapshot(p.dir, sizes) || matchesRepaired(p.dir, sizes) {
			continue
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

// noteRepaired records each partition's segment sizes as the repair left them.
func noteRepaired(parts []partition) error {
	for _, p := range parts {
		if len(p.segs) == 0 {
			continue
		}
		sizes, err := segmentSizes(p.segs)
		if err != nil {
			return err
		}
		raw, err := json.Marshal(sizes)
		if err != nil {
			return err
		}
		path := filepath.Join(p.dir, repairedFile)
		if err := writeSync(path+".repair", raw); err != nil {
			return err
		}
		if err := os.Rename(path+".repair", path); err != nil {
			return err
		}
	}
	return nil
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

// matchesRepaired: the last repair left the segments as they are.
func matchesRepaired(dir string, sizes map[int64]int64) bool {
	raw, err := os.ReadFile(filepath.Join(dir, repairedFile))
	if err != nil {
		return false
	}
	var was map[int64]int64
	if json.Unmarshal(raw, &was) != nil || len(was) != len(sizes) {
		return false
	}
	for base, size := range sizes {
		if was[base] != size {
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
