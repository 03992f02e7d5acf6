package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"gocloud.dev/blob"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/store"
)

// Data follows slots, not partition ids. With --wal kafka a partition added
// over slots that removed partitions held replays their changelog; with
// --wal disk or none the data of those slots survives only in the removed
// partitions' snapshots, filed under their ids. A partition with no snapshot
// of its own (a new one) therefore carries the data of its slots over from
// them: for every slot, the newest usable snapshot (by epoch: epochs come
// from one counter, so the partition that held the slot last has the
// highest) of any other partition that covered it, filtered to the slots it
// gives. The same covers a partition re-added over the same slots, a split
// and a merge.

// Unfinished returns the owner records of other partitions over slots that
// overlap want's range, at an epoch below epoch, that are not final: owners
// that may be handing their slots over right now (a removal closes the
// partition, then uploads its final snapshot). A record that names no range
// (written before records did) is taken at the range of its newest snapshot.
func (b *Bucket) Unfinished(ctx context.Context, want Want, epoch uint64) (map[uint32]Owner, error) {
	ids, err := b.partitionIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[uint32]Owner{}
	for _, id := range ids {
		if id == want.Partition {
			continue
		}
		o, ok, err := b.Owner(ctx, id)
		if errors.Is(err, ErrCorrupt) || (err == nil && (!ok || o.Final || o.Epoch >= epoch)) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if o.Range == (keyspace.Range{}) {
			cands, err := b.carriable(ctx, id, want)
			if err != nil {
				return nil, err
			}
			if len(cands) == 0 {
				continue
			}
			o.Range = cands[0].m.Range
		}
		if o.Range.Overlaps(want.Range) {
			out[id] = o
		}
	}
	return out, nil
}

// Carry loads into st (empty) the data of want's slots from other
// partitions' snapshots: for each slot, the newest usable snapshot (newer)
// of any partition other than want's that covered it, of this cluster and
// slot count. A snapshot that does not load is logged and skipped for an
// older one. It returns the snapshots it took data from (none: there was
// nothing to carry). On an error st is empty again, unless the error wraps
// ErrStoreDirty.
func (b *Bucket) Carry(ctx context.Context, want Want, st Target, work string, log zerolog.Logger) ([]Manifest, error) {
	ids, err := b.partitionIDs(ctx)
	if err != nil {
		return nil, err
	}
	var cands []listed
	for _, id := range ids {
		if id == want.Partition {
			continue
		}
		ls, err := b.carriable(ctx, id, want)
		if err != nil {
			return nil, err
		}
		cands = append(cands, ls...)
	}
	slices.SortStableFunc(cands, func(x, y listed) int { return newer(x.m, y.m) })
	left := map[int32]bool{}
	for _, s := range want.Range.Slots() {
		left[s] = true
	}
	var (
		used  []Manifest
		clock uint64
	)
	for _, c := range cands {
		var give []int32
		for _, s := range c.m.Range.Slots() {
			if left[s] {
				give = append(give, s)
			}
		}
		if len(give) == 0 {
			continue
		}
		m, cl, ok, err := b.carryOne(ctx, c, give, st, work, log)
		if err != nil {
			if derr := st.DropAll(); derr != nil {
				return nil, fmt.Errorf("%w: %w; emptying the store again: %w", ErrStoreDirty, err, derr)
			}
			return nil, err
		}
		if !ok {
			continue
		}
		for _, s := range give {
			delete(left, s)
		}
		used, clock = append(used, m), max(clock, cl)
		log.Info().Uint32("from_partition", m.Partition).Str("snapshot", c.name).Str("slots", slotList(give)).Int64("bytes", m.Bytes).
			Msg("carried the data of these slots over from a partition that held them before")
	}
	if len(used) == 0 {
		return nil, nil
	}
	synced := slices.MinFunc(used, func(x, y Manifest) int { return x.Created.Compare(y.Created) }).Created
	if err := st.Apply(kv.Write{Clock: clock, SyncedAt: synced.UnixMilli()}); err != nil {
		if derr := st.DropAll(); derr != nil {
			return nil, fmt.Errorf("%w: %w; emptying the store again: %w", ErrStoreDirty, err, derr)
		}
		return nil, err
	}
	return used, nil
}

// carriable lists the snapshots of partition id that could give want some
// of its slots: readable, of this cluster and slot count, overlapping want's
// range. A manifest that does not read is skipped.
func (b *Bucket) carriable(ctx context.Context, id uint32, want Want) ([]listed, error) {
	names, err := b.List(ctx, id)
	if err != nil {
		return nil, err
	}
	ls, err := b.manifests(ctx, id, names)
	if err != nil {
		return nil, err
	}
	ls = slices.DeleteFunc(ls, func(l listed) bool {
		like := Want{Partition: id, Range: l.m.Range, Slots: want.Slots}
		return l.err != nil || like.fits(l.m, b.cluster, l.m.Created) != nil || !l.m.Range.Overlaps(want.Range)
	})
	slices.SortStableFunc(ls, func(x, y listed) int { return newer(x.m, y.m) })
	return ls, nil
}

// carryOne downloads, verifies and loads the slots give of one snapshot
// into st. ok is false (and err nil) when it is unusable after all (the
// caller takes an older one), or when it failed before loading anything.
func (b *Bucket) carryOne(ctx context.Context, c listed, give []int32, st Target, work string, log zerolog.Logger) (Manifest, uint64, bool, error) {
	dir := filepath.Join(work, fmt.Sprintf("p%d-%s", c.m.Partition, c.name))
	defer os.RemoveAll(dir)
	err := b.download(ctx, c.m.Partition, c.name, dir)
	if err != nil && !isNotFound(err) {
		// The store failed, not the snapshot (as in Restore's load): an
		// older one would carry less.
		return Manifest{}, 0, false, err
	}
	var m Manifest
	if err == nil {
		m, err = Verify(dir)
	}
	if err == nil && (m.Partition != c.m.Partition || m.Range != c.m.Range || m.Slots != c.m.Slots || m.Cluster != b.cluster) {
		err = fmt.Errorf("%w: the manifest downloaded is not the one listed", ErrMismatch)
	}
	if err != nil {
		log.Warn().Err(err).Uint32("from_partition", c.m.Partition).Str("snapshot", c.name).Msg("snapshot unusable to carry slots over; trying an older one")
		return Manifest{}, 0, false, nil
	}
	f, err := os.Open(filepath.Join(dir, DataFile))
	if err != nil {
		return Manifest{}, 0, false, err
	}
	defer f.Close()
	keep := map[int32]bool{}
	for _, s := range give {
		keep[s] = true
	}
	pr, pw := io.Pipe()
	var clock uint64
	filtered := make(chan error, 1)
	go func() {
		var err error
		clock, err = store.FilterSnapshot(pw, f, func(k []byte) int32 { return keyspace.Slot(k, m.Slots) }, func(s int32) bool { return keep[s] })
		pw.CloseWithError(err)
		filtered <- err
	}()
	err = st.LoadSnapshot(pr)
	pr.CloseWithError(errors.New("snapshot: the load stopped"))
	if ferr := <-filtered; err == nil {
		err = ferr
	}
	if err != nil {
		return m, 0, false, fmt.Errorf("snapshot: carrying slots %s over from partition %d's %s: %w", slotList(give), m.Partition, c.name, err)
	}
	return m, clock, true, nil
}

// partitionIDs lists the partitions that have a folder in the bucket.
func (b *Bucket) partitionIDs(ctx context.Context) ([]uint32, error) {
	w := b.watch(ctx)
	defer w.done()
	prefix := b.cluster + "/p"
	it := b.b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	var ids []uint32
	for {
		obj, err := it.Next(w.ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, w.explain(fmt.Errorf("snapshot: listing %s: %w", prefix, err))
		}
		w.feed()
		if !obj.IsDir {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/"), 10, 32)
		if err == nil {
			ids = append(ids, uint32(id))
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// slotList writes slots (sorted) as ranges: "0-3,6".
func slotList(slots []int32) string {
	s := slices.Sorted(slices.Values(slots))
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(int(s[i])))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", s[i], s[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
