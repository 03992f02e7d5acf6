package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicedb/sluice/keyspace"
)

// Fencing follows slots, not partition ids. A partition's changelog producer
// has a transactional id of its own, so when a partition is removed and
// another one added over some of its slots, the new owner's InitProducerID
// under its own id leaves the old producer running: both would apply the
// same ingest records and answer reads of the same keys. The registry
// therefore keeps, for every transactional id that was ever given a slot
// range, the ranges it was given, and never forgets them (a partition's
// removal keeps its writer record). A new owner of a range fences every
// other id recorded over an overlapping range before it replays.

// Writer is a changelog producer, by transactional id, and every slot range
// it was ever given.
type Writer struct {
	ID     string        `json:"id"`
	Ranges []WriterRange `json:"ranges"`
}

// WriterRange is a slot range a writer was given.
type WriterRange struct {
	Range keyspace.Range `json:"range"`
	// Epoch is the epoch the writer was first given the range at (later
	// grants of the same range, moves, keep it): every owner of the range
	// under this id had an epoch at least this high, and every owner that
	// came after any of them has a higher one.
	Epoch uint64 `json:"epoch"`
}

const writerPrefix = "writer/"

// RecordWriter returns the mutation that records that the producer with
// transactional id id is given slot range r at epoch, and whether one is
// needed: an id already recorded over exactly r keeps its first epoch. Write
// it in the same Update as the partition entry that gives the range.
func (v *View) RecordWriter(id string, r keyspace.Range, epoch uint64) (Mutation, bool) {
	w := v.Writers[id]
	if slices.ContainsFunc(w.Ranges, func(wr WriterRange) bool { return wr.Range == r }) {
		return Mutation{}, false
	}
	w.ID = id
	w.Ranges = append(slices.Clone(w.Ranges), WriterRange{Range: r, Epoch: epoch})
	b, _ := json.Marshal(w)
	return Mutation{Key: writerPrefix + id, Value: b}, true
}

// Fences returns, sorted, the transactional ids other than self that were
// given a range overlapping r at an epoch below epoch: the producers a new
// owner of r at epoch must fence before it replays.
//
// An id given an overlapping range only at a later epoch is left alone: the
// registry gave those slots away after this owner got them, so this owner is
// the deposed one, and fencing the newer writer would only disrupt it (its
// own restore finds it deposed).
func (v *View) Fences(r keyspace.Range, epoch uint64, self string) []string {
	var ids []string
	for id, w := range v.Writers {
		if id == self {
			continue
		}
		if slices.ContainsFunc(w.Ranges, func(wr WriterRange) bool { return wr.Epoch < epoch && wr.Range.Overlaps(r) }) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// applyWriter folds a writer record into v. A writer record is never
// removed: a tombstone under its key is refused, and the writer kept.
func applyWriter(v *View, key string, value []byte) error {
	id := strings.TrimPrefix(key, writerPrefix)
	if value == nil {
		return fmt.Errorf("registry: %s: a writer record is never removed", key)
	}
	var w Writer
	if err := json.Unmarshal(value, &w); err != nil {
		return err
	}
	if w.ID != id || id == "" {
		return fmt.Errorf("registry: %s holds writer %q", key, w.ID)
	}
	for _, wr := range w.Ranges {
		if wr.Range.From < 0 || wr.Range.From >= wr.Range.To {
			return fmt.Errorf("registry: writer %s has the empty or negative range %s", id, wr.Range)
		}
	}
	// Folded as a union with what was recorded before, each range at its
	// first epoch: a record that left a range out must not make it forgotten.
	old := v.Writers[id]
	merged := Writer{ID: id, Ranges: slices.Clone(old.Ranges)}
	for _, wr := range w.Ranges {
		i := slices.IndexFunc(merged.Ranges, func(o WriterRange) bool { return o.Range == wr.Range })
		if i < 0 {
			merged.Ranges = append(merged.Ranges, wr)
		} else {
			merged.Ranges[i].Epoch = min(merged.Ranges[i].Epoch, wr.Epoch)
		}
		v.MaxEpoch = max(v.MaxEpoch, wr.Epoch)
	}
	if v.Writers == nil {
		v.Writers = map[string]Writer{}
	}
	v.Writers[id] = merged
	return nil
}

// ranges lists the slot ranges w was given, for messages.
func (w Writer) ranges() string {
	s := make([]string, len(w.Ranges))
	for i, wr := range w.Ranges {
		s[i] = wr.Range.String()
	}
	return strings.Join(s, " ")
}
