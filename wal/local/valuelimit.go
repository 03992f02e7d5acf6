package local

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/store"
)

// MaxDiskValue is the largest value a --wal disk partition takes: its
// encoded form (with a version, timestamp and expiry of up to a uvarint
// each) stays under store.MaxLSMValue, so it never reaches badger's value
// log, whose failed sync badger does not return (store.DurableBadgerOptions).
// It is 30 bytes short of 1 MiB; an Upsert may carry up to 1 MiB of keys and
// values in the other modes.
const MaxDiskValue = store.MaxLSMValue - 1 - 3*binary.MaxVarintLen64

// ValueLimit is the stage a --wal disk partition runs last: it refuses a
// value over MaxDiskValue with kv.ErrInvalid (InvalidArgument, naming the
// limit) before the write joins a group. The store refuses such a value too
// (ApplyAtomic), but there the whole group fails and the partition re-syncs:
// every other request of the group would fail with it.
type ValueLimit struct{}

var _ pipeline.Stage = ValueLimit{}

func (ValueLimit) Apply(w pipeline.Write) (pipeline.Write, bool, error) {
	if len(w.Value) > MaxDiskValue {
		return w, false, fmt.Errorf("%w: the value of key %q is %d bytes, over the limit of %d bytes for --wal disk "+
			"(its encoded form stays under 1 MiB, badger's value threshold, so it is synced with the memtable's log)",
			kv.ErrInvalid, w.Key, len(w.Value), MaxDiskValue)
	}
	return w, true, nil
}

// DiskStages are a --wal disk partition's stages: the node's, then ValueLimit.
func DiskStages(stages []pipeline.Stage) []pipeline.Stage {
	return append(stages[:len(stages):len(stages)], ValueLimit{})
}
