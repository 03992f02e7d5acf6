package partition

import (
	"errors"
	"fmt"

	"github.com/sluicedb/sluice/store"
)

// A corrupt store: a read of it wrapped store.ErrCorrupt. Its offsets may
// have reached the disk while pages of its values did not (a power cut, or a
// disk that filled up, before the page cache was written back: a Kafka-mode
// store is never synced), so replaying the log from its offsets would not
// mend it, and every read of the lost key fails and re-syncs again.
//
// With Config.DiscardCorrupt (the log holds every acknowledged write) the
// next restore empties the store and restores it afresh, from the snapshot
// (Seed) and the log, as an empty disk is. Without it the store is the log:
// nothing can mend it, so every restore fails naming the corruption, and the
// partition answers Unavailable with that error until an operator acts.

// ErrStoreCorrupt wraps the error of a restore that found the store corrupt
// and cannot discard it (the store is the partition's log).
var ErrStoreCorrupt = errors.New("partition: the store is corrupt and it is the partition's write-ahead log: nothing acknowledged can be restored from elsewhere; restore the partition from a snapshot (or its disk from a backup)")

// foundCorrupt records err if it says the store is corrupt.
func (p *Partition) foundCorrupt(err error) {
	if errors.Is(err, store.ErrCorrupt) {
		p.state.update(func(s *State) bool {
			if s.corrupt != nil {
				return false
			}
			s.corrupt = err
			return true
		})
	}
}

// discardCorrupt empties a store found corrupt if the log can restore it,
// and reports whether it did; else it fails for good, naming the corruption.
func (p *Partition) discardCorrupt() (bool, error) {
	found := p.state.load().corrupt
	if found == nil {
		return false, nil
	}
	if !p.cfg.DiscardCorrupt {
		err := fmt.Errorf("%w: %w", ErrStoreCorrupt, found)
		p.waitingFor(err.Error()) // Status, ListPartitions and /healthz name it
		return false, err
	}
	p.cfg.Log.Error().Err(found).Msg("the store is corrupt (its disk lost pages its offsets had reached): emptied, restoring it afresh from the snapshot and the changelog")
	if err := p.cfg.Store.Clear(); err != nil {
		return false, fmt.Errorf("emptying a corrupt store: %w", err)
	}
	p.state.update(func(s *State) bool {
		s.corrupt = nil
		return true
	})
	return true, nil
}
