package kafkaread

import (
	"encoding/binary"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Batch attributes (Kafka's RecordBatch format, magic 2).
const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// dropAborted returns the record batches of a read_committed fetch answer
// without those of aborted transactions, and end, the offset after the last
// whole batch (kept or not): where the next fetch starts.
//
// A broker lists the aborted transactions overlapping its answer by producer
// id and first offset, and a transaction ends at its producer's next control
// batch (its abort marker). franz-go's filter relies on that marker alone. A
// broker that aborts a transaction without writing one, as kfake does for
// a transaction in flight when it crashed (pkg/kfake persist.go,
// loadPartitionFullReplay), would then have every later batch of that
// producer filtered out as aborted — committed records lost to a replay. So
// here a transaction also ends where its producer's epoch changes: every
// batch of one transaction carries the epoch it began with, and a producer
// whose transaction was aborted is given a new epoch before it writes again.
func dropAborted(p *kmsg.FetchResponseTopicPartition) (kept []byte, end int64) {
	aborted := make(map[int64][]int64, len(p.AbortedTransactions))
	for _, a := range p.AbortedTransactions {
		aborted[a.ProducerID] = append(aborted[a.ProducerID], a.FirstOffset)
	}
	for pid := range aborted {
		slices.Sort(aborted[pid])
	}
	inside := make(map[int64]int16) // producer → epoch of the aborted transaction being read
	isAborted := func(b *kmsg.RecordBatch) bool {
		if b.Attributes&attrTransactional == 0 {
			return false
		}
		for {
			starts := aborted[b.ProducerID]
			if len(starts) == 0 || b.FirstOffset < starts[0] {
				return false
			}
			epoch, in := inside[b.ProducerID]
			switch {
			case b.Attributes&attrControl != 0: // its marker: the transaction ends here
				aborted[b.ProducerID] = starts[1:]
				delete(inside, b.ProducerID)
				return true
			case !in:
				inside[b.ProducerID] = b.ProducerEpoch
				return true
			case epoch == b.ProducerEpoch:
				return true
			}
			// A new epoch: the aborted transaction ended without a marker and
			// b belongs to a later one; check it against the next.
			aborted[b.ProducerID] = starts[1:]
			delete(inside, b.ProducerID)
		}
	}

	in := p.RecordBatches
	kept = make([]byte, 0, len(in))
	for len(in) >= 17 {
		size := 12 + int(int32(binary.BigEndian.Uint32(in[8:12])))
		if size < 17 || size > len(in) {
			break // a partial batch at the end of the answer: fetched again next time
		}
		raw := in[:size]
		in = in[size:]
		var b kmsg.RecordBatch
		if raw[16] != 2 || b.ReadFrom(raw) != nil {
			kept = append(kept, raw...) // an old message set, or for kgo to report as corrupt
			continue
		}
		end = b.FirstOffset + int64(b.LastOffsetDelta) + 1
		if !isAborted(&b) {
			kept = append(kept, raw...)
		}
	}
	return append(kept, in...), end
}
