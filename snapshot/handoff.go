package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sluicedb/sluice/keyspace"
)

// Hand-offs of partitions with no write-ahead log to replay (--wal disk or
// none): their state moves from owner to owner only through the bucket. Each
// partition has an owner record beside its snapshots, <cluster>/p<id>/owner.json:
//
//   - an owner writes {epoch, node} before it serves (Announce);
//   - when it stops for good at that epoch (a move, a removal, a graceful
//     shutdown of --wal none) it uploads a final snapshot, then marks the
//     record final, naming that snapshot (Finish);
//   - a new owner with an empty store reads the record: none (a new
//     partition), its own epoch (a restart) or final: restore the newest
//     snapshot now; an older owner not final yet: it is handing over, wait
//     for Finish (up to a bound, then restore the newest there is).

// OwnerFile is the owner record's name in a partition's folder.
const OwnerFile = "owner.json"

// Owner is a partition's owner record.
type Owner struct {
	Epoch uint64 `json:"epoch"`
	Node  string `json:"node"`
	// Range is the partition's slot range (empty in records from before it
	// was written): a partition added later over these slots carries their
	// data over from this one's snapshots (carry.go).
	Range keyspace.Range `json:"range"`
	// Final: the owner stopped at Epoch; Snapshot is its final snapshot.
	Final    bool   `json:"final,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
}

// ErrNewerOwner refuses to write an owner record over a newer owner's.
var ErrNewerOwner = errors.New("snapshot: a newer owner holds the partition")

// Owner reads partition's owner record; ok is false when there is none.
func (b *Bucket) Owner(ctx context.Context, partition uint32) (o Owner, ok bool, err error) {
	key := b.dir(partition) + OwnerFile
	w := b.watch(ctx)
	defer w.done()
	raw, err := b.b.ReadAll(w.ctx, key)
	if isNotFound(err) {
		return Owner{}, false, nil
	}
	if err != nil {
		return Owner{}, false, w.explain(fmt.Errorf("snapshot: reading %s: %w", key, err))
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return Owner{}, false, fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
	}
	return o, true, nil
}

// Announce records that node owns partition (over slots rng) at epoch and
// has not stopped. A record of a newer epoch is left alone: ErrNewerOwner.
func (b *Bucket) Announce(ctx context.Context, partition uint32, rng keyspace.Range, epoch uint64, node string) error {
	return b.putOwner(ctx, partition, Owner{Epoch: epoch, Node: node, Range: rng})
}

// Claim is an owner's announcement before it serves, at each restore:
// Announce, unless the record already names node at epoch, not finished (a
// re-sync of the same owner need not write it again). A later owner then
// waits for this one's final snapshot; without the record it would restore
// the final snapshot of the owner before, without this one's writes.
func (b *Bucket) Claim(ctx context.Context, partition uint32, rng keyspace.Range, epoch uint64, node string) error {
	if o, ok, err := b.Owner(ctx, partition); err == nil && ok && o.Epoch == epoch && !o.Final && o.Node == node {
		return nil
	}
	return b.Announce(ctx, partition, rng, epoch, node)
}

// Finish records that the owner at epoch stopped, its final snapshot being
// m (uploaded before).
func (b *Bucket) Finish(ctx context.Context, m Manifest, node string) error {
	return b.putOwner(ctx, m.Partition, Owner{Epoch: m.Epoch, Node: node, Range: m.Range, Final: true, Snapshot: m.Name()})
}

func (b *Bucket) putOwner(ctx context.Context, partition uint32, o Owner) error {
	cur, ok, err := b.Owner(ctx, partition)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return err
	}
	if ok && cur.Epoch > o.Epoch {
		return fmt.Errorf("%w: epoch %d on %s, this one %d", ErrNewerOwner, cur.Epoch, cur.Node, o.Epoch)
	}
	raw, err := json.Marshal(o)
	if err != nil {
		return err
	}
	key := b.dir(partition) + OwnerFile
	w := b.watch(ctx)
	defer w.done()
	if err := b.b.WriteAll(w.ctx, key, raw, nil); err != nil {
		return w.explain(fmt.Errorf("snapshot: writing %s: %w", key, err))
	}
	return nil
}
