package snapshot

import (
	"io"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
)

// Source is a store a snapshot is taken of: a Badger store, or a Memory one
// (--store memory), which writes the same format.
type Source interface {
	Snapshot(w io.Writer) (store.SnapshotInfo, error)
}

// Target is a store a snapshot is loaded into.
type Target interface {
	LoadSnapshot(r io.Reader) error
	// Apply records, after a load, when the snapshot was in sync
	// (kv.Write.SyncedAt).
	Apply(kv.Write) error
	// DropAll empties the store: a half-loaded one must not be taken for a
	// whole one.
	DropAll() error
}

var (
	_ Source = (*store.Badger)(nil)
	_ Source = (*store.Memory)(nil)
	_ Target = (*store.Badger)(nil)
	_ Target = (*store.Memory)(nil)
)
