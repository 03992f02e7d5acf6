package snapshot

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
)

// Want is what a restore needs of a snapshot.
type Want struct {
	Partition uint32
	// Range is the partition's slot range: a snapshot must cover exactly it
	// (one of a wider range holds other partitions' keys, one of a narrower
	// range misses some).
	Range keyspace.Range
	// Slots is the cluster's slot count: keys map to slots by it, so a
	// snapshot taken under another count holds its keys in the wrong slots.
	Slots int32
	// MaxAge, if not 0, refuses a snapshot older than it: the changelog's
	// delete.retention.ms. A replay from an older snapshot's offsets may miss
	// removals whose tombstones compaction has dropped since.
	MaxAge time.Duration
}

// fits returns why m cannot seed the partition of cluster that w describes
// at now, or nil.
func (w Want) fits(m Manifest, cluster string, now time.Time) error {
	switch {
	case m.Cluster != cluster:
		return fmt.Errorf("%w: it is of cluster %q, not %q", ErrMismatch, m.Cluster, cluster)
	case m.Partition != w.Partition:
		return fmt.Errorf("%w: it is of partition %d, not %d", ErrMismatch, m.Partition, w.Partition)
	case m.Range != w.Range:
		return fmt.Errorf("%w: it covers slots %s, the partition %s", ErrMismatch, m.Range, w.Range)
	case m.Slots == 0:
		return fmt.Errorf("%w: its manifest names no slot count (written before sluice recorded it)", ErrMismatch)
	case m.Slots != w.Slots:
		return fmt.Errorf("%w: it was taken with %d slots, the cluster has %d", ErrMismatch, m.Slots, w.Slots)
	}
	for slot := range m.Offsets {
		if !m.Range.Contains(slot) {
			return fmt.Errorf("%w: it has an offset for slot %d, outside its range %s", ErrMismatch, slot, m.Range)
		}
	}
	if age := now.Sub(m.Created); w.MaxAge > 0 && age > w.MaxAge {
		return fmt.Errorf("%w: taken %s ago (%s), longer than the changelog's delete.retention.ms of %s (%d ms): removals since may have been compacted away",
			ErrTooOld, age.Round(time.Second), m.Created.Format(time.RFC3339), w.MaxAge, w.MaxAge.Milliseconds())
	}
	return nil
}

// newer orders manifests newest first: by epoch, then by how far into the
// changelog they reach (the sum of their slots' offsets), then by time.
//
// The epoch first: in --wal disk and none a snapshot's offsets are its
// owner's own sequence numbers, so two owners' histories do not compare, and
// a deposed owner's snapshot may "reach further" than the one of the owner
// that replaced it and acknowledged writes since. The registry gives a
// partition's epochs in order of ownership, so the higher epoch holds what
// came later. (With --wal kafka a newer owner replayed everything committed
// before it served, so its snapshot plus the replay from its offsets loses
// nothing either.)
//
// Within one epoch, offsets, not the writer's clock, say which snapshot holds
// more of the log: two nodes' clocks may disagree, and a snapshot is named by
// its writer's. Within one owner's history every slot's offset only grows, so
// of two snapshots one reaches at least as far in every slot (dominance) and
// its sum is the larger: the sum agrees with dominance wherever dominance
// decides, and still gives an order where it does not (two histories, which
// the replay's offset checks then refuse).
func newer(a, b Manifest) int {
	if c := cmp.Compare(b.Epoch, a.Epoch); c != 0 {
		return c
	}
	if c := cmp.Compare(offsetSum(b), offsetSum(a)); c != 0 {
		return c
	}
	return b.Created.Compare(a.Created)
}

func offsetSum(m Manifest) int64 {
	var n int64
	for _, o := range m.Offsets {
		n += o
	}
	return n
}

// listed is a snapshot in the bucket and its manifest, if it reads.
type listed struct {
	name string
	m    Manifest
	err  error
}

// manifests reads the manifest of each named snapshot of partition.
// A manifest that does not read is returned with its error; only a failing
// blob store fails the call.
func (b *Bucket) manifests(ctx context.Context, partition uint32, names []string) ([]listed, error) {
	out := make([]listed, 0, len(names))
	for _, name := range names {
		m, err := b.readManifest(ctx, b.dir(partition)+name+"/"+ManifestFile)
		if err != nil && (errors.Is(err, ErrStalled) || ctx.Err() != nil || !errors.Is(err, ErrCorrupt)) {
			return nil, err
		}
		out = append(out, listed{name: name, m: m, err: err})
	}
	return out, nil
}

func (b *Bucket) readManifest(ctx context.Context, key string) (Manifest, error) {
	w := b.watch(ctx)
	defer w.done()
	r, err := b.b.NewReader(w.ctx, key, nil)
	if err != nil {
		if isNotFound(err) { // deleted since the listing
			return Manifest{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
		}
		return Manifest{}, w.explain(fmt.Errorf("snapshot: reading %s: %w", key, err))
	}
	defer r.Close()
	raw, err := io.ReadAll(io.LimitReader(progressReader{r, w}, 1<<20))
	if err != nil {
		return Manifest{}, w.explain(fmt.Errorf("snapshot: reading %s: %w", key, err))
	}
	return ReadManifest(bytes.NewReader(raw))
}

// newestFirst orders the named snapshots of like's partition newest first
// (newer), those that do not fit like (another range, slot count or
// cluster) or do not read after all the others.
func (b *Bucket) newestFirst(ctx context.Context, like Manifest, names []string) ([]listed, error) {
	ls, err := b.manifests(ctx, like.Partition, names)
	if err != nil {
		return nil, err
	}
	want := Want{Partition: like.Partition, Range: like.Range, Slots: like.Slots}
	unfit := func(l listed) bool { return l.err != nil || want.fits(l.m, b.cluster, l.m.Created) != nil }
	slices.SortStableFunc(ls, func(x, y listed) int {
		if ux, uy := unfit(x), unfit(y); ux != uy {
			if ux {
				return 1
			}
			return -1
		}
		return newer(x.m, y.m)
	})
	return ls, nil
}

// Restore loads into st (empty) the newest snapshot (newer: by epoch, then
// offsets) that fits want (cluster, partition, range, slot count, age) and
// passes its checksum; any other is logged, with the reason, and skipped for
// the next. A read of it that fails on the bucket's side fails the restore
// (the caller retries): an older snapshot holds less. ok is false
// when none fits: replay the changelog from its start. The store then
// records the snapshot's time as when it was last in sync with the log. On
// an error st is empty again, unless the error wraps ErrStoreDirty.
func (b *Bucket) Restore(ctx context.Context, want Want, st Target, work string, log zerolog.Logger) (Manifest, bool, error) {
	names, err := b.List(ctx, want.Partition)
	if err != nil {
		return Manifest{}, false, err
	}
	ls, err := b.manifests(ctx, want.Partition, names)
	if err != nil {
		return Manifest{}, false, err
	}
	now := time.Now()
	var fit []listed
	for _, l := range ls {
		if l.err == nil {
			l.err = want.fits(l.m, b.cluster, now)
		}
		if l.err != nil {
			log.Warn().Err(l.err).Str("snapshot", l.name).Msg("snapshot unusable; trying the one before it")
			continue
		}
		fit = append(fit, l)
	}
	slices.SortStableFunc(fit, func(x, y listed) int { return newer(x.m, y.m) })
	for _, l := range fit {
		m, ok, err := b.load(ctx, want, l.name, st, work, log)
		if ok || err != nil {
			return m, ok, err
		}
	}
	return Manifest{}, false, nil
}

// load downloads, verifies and loads one snapshot. ok is false (and err
// nil) when it is unusable after all: the caller tries the next.
func (b *Bucket) load(ctx context.Context, want Want, name string, st Target, work string, log zerolog.Logger) (Manifest, bool, error) {
	dir := filepath.Join(work, name)
	defer os.RemoveAll(dir)
	start := time.Now()
	err := b.download(ctx, want.Partition, name, dir)
	if err != nil && !isNotFound(err) {
		// The store (or the work folder), not the snapshot, failed: a
		// stall, a 503, a reset connection. The one before it is older:
		// loading it would lose what this one holds beyond it (the restore
		// is retried). Only a snapshot gone since the listing, or one that
		// does not verify, is skipped for the next.
		return Manifest{}, false, err
	}
	var m Manifest
	if err == nil {
		m, err = Verify(dir)
	}
	if err == nil {
		err = want.fits(m, b.cluster, time.Now()) // the manifest as downloaded
	}
	if err != nil {
		log.Warn().Err(err).Str("snapshot", name).Msg("snapshot unusable; trying the one before it")
		return Manifest{}, false, nil
	}
	_, err = Load(dir, st)
	if err == nil {
		err = st.Apply(kv.Write{SyncedAt: m.Created.UnixMilli()})
	}
	if err != nil {
		// A half-loaded store must not be taken for a whole one.
		if derr := st.DropAll(); derr != nil {
			return m, false, fmt.Errorf("%w: loading %s: %w; emptying the store again: %w", ErrStoreDirty, name, err, derr)
		}
		return m, false, fmt.Errorf("snapshot: loading %s: %w", name, err)
	}
	took := time.Since(start)
	log.Info().Str("snapshot", name).Int64("keys", m.Keys).Int64("bytes", m.Bytes).Dur("took", took).
		Float64("mb_per_sec", float64(m.Bytes)/1e6/took.Seconds()).Msg("restored from snapshot; replaying the changelog from its offsets")
	return m, true, nil
}
