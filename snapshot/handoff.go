package snapshot

import (
	"context"
	"fmt"
)

// Newest returns the manifest of the partition's newest complete snapshot in
// the bucket (without checking its data); ok is false when there is none.
// A new owner of a partition with no write-ahead log to replay (--wal disk
// or none) reads it to know whether the previous owner's final snapshot is
// there yet.
func (b *Bucket) Newest(ctx context.Context, partition uint32) (m Manifest, ok bool, err error) {
	names, err := b.List(ctx, partition)
	if err != nil || len(names) == 0 {
		return Manifest{}, false, err
	}
	key := b.dir(partition) + names[0] + "/" + ManifestFile
	w := b.watch(ctx)
	defer w.done()
	r, err := b.b.NewReader(w.ctx, key, nil)
	if err != nil {
		return Manifest{}, false, w.explain(fmt.Errorf("snapshot: reading %s: %w", key, err))
	}
	defer r.Close()
	m, err = ReadManifest(progressReader{r, w})
	if err != nil {
		return m, false, fmt.Errorf("snapshot: %s: %w", key, err)
	}
	return m, true, nil
}
