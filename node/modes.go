package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/snapshot"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
	"github.com/sluicedb/sluice/wal/local"
)

// Storage modes: a node's partitions all use one write-ahead log and one
// store (Config.WAL, Config.Store):
//
//	WAL    store    durable by                      a crash loses
//	kafka  badger   the Kafka transaction           nothing acknowledged
//	disk   badger   fsync of the partition's Badger nothing acknowledged
//	none   memory   backups to the snapshot bucket  writes since the last backup
//	kafka  cached   as kafka; reads from a local write-through cache
//	disk   cached   as disk;  reads from a local write-through cache
//
// The line monitor, clock, stages and consistency levels are the same in
// every mode; where Kafka's transactions fence a deposed owner, a local
// log's partitions hold an ownership lease against the registry
// (lease.go). Kafka still holds the registry (a single node's embedded
// broker does); ingest and standbys need WAL kafka.
const (
	WALKafka = "kafka"
	WALDisk  = "disk"
	WALNone  = "none"

	StoreBadger = "badger"
	StoreMemory = "memory"
	StoreCached = "cached"
)

// validModes are the WAL+store combinations a node runs.
var validModes = []string{"kafka+badger", "kafka+cached", "disk+badger", "disk+cached", "none+memory"}

// Mode names the node's storage mode, "wal+store".
func (c *Config) Mode() string { return c.WAL + "+" + c.Store }

// checkModes fills in the storage mode's defaults and refuses a combination
// that makes no sense.
func (c *Config) checkModes() error {
	if c.Store == "" {
		c.Store = StoreBadger
		if c.WAL == WALNone {
			c.Store = StoreMemory
		}
	}
	if !slices.Contains(validModes, c.Mode()) {
		why := ""
		switch {
		case c.WAL == WALNone:
			why = ": with no write-ahead log only a memory store, backed up to the snapshot bucket, makes sense"
		case c.Store == StoreMemory:
			why = ": a memory store is lost with the process, so nothing would replay into it; use --wal none for backups-only state"
		}
		return fmt.Errorf("node: --wal %s --store %s is not a storage mode%s (the modes are %v: --wal kafka, disk or none; --store badger, memory or cached)", c.WAL, c.Store, why, validModes)
	}
	if c.Store == StoreCached {
		if c.CacheDir == "" {
			return errors.New("node: --store cached needs --cache-dir (a fast local disk for the write-through cache)")
		}
		if filepath.Clean(c.CacheDir) == filepath.Clean(c.DataDir) {
			return errors.New("node: --cache-dir must not be --data-dir: the cache is a copy on another disk")
		}
	}
	if c.WAL == WALNone && c.SnapshotURL == "" {
		return errors.New("node: --wal none keeps the data in memory: it needs --snapshot-url for its backups")
	}
	if c.BackupEvery < 0 || c.HandoffTimeout < 0 {
		return errors.New("node: --backup-every and --handoff-timeout must be positive")
	}
	return nil
}

// localStore is a partition's store as the node holds it: what snapshots
// read and restores load (a Badger store, or a Memory one).
type localStore interface {
	store.Store
	snapshot.Source
	snapshot.Target
}

// logModes says at start what the node's storage mode keeps and loses.
func (n *Node) logModes() {
	log := n.cfg.Log.With().Str("wal", n.cfg.WAL).Str("store", n.cfg.Store).Logger()
	switch n.cfg.WAL {
	case WALNone:
		log.Warn().Dur("backup_every", n.cfg.BackupEvery).Str("snapshot_url", n.cfg.SnapshotURL).
			Msg("no write-ahead log: partitions live in memory, backed up to the snapshot bucket; a crash loses the writes since the last backup")
	case WALDisk:
		log.Info().Msg("write-ahead log on disk: each partition's Badger store is synced before every acknowledgement; ingest and standbys need --wal kafka")
		if n.bucket == nil {
			log.Warn().Msg("--wal disk without --snapshot-url: partitions cannot move off this node (a move hands the data over through a final snapshot in the bucket)")
		}
	}
}

// openStore opens partition id's store in dir for the node's mode.
func (n *Node) openStore(id uint32, dir string, asStandby bool) (localStore, error) {
	if asStandby && n.cfg.WAL != WALKafka {
		return nil, fmt.Errorf("a standby tails the Kafka changelog: this node runs --wal %s, whose partitions have no standbys", n.cfg.WAL)
	}
	switch n.cfg.WAL {
	case WALNone:
		return store.NewMemory(), nil
	case WALDisk:
		return store.OpenBadger(store.DurableBadgerOptions(filepath.Join(dir, "badger")).WithLogger(newBadgerLog(n.cfg.Log, id)))
	}
	return store.OpenBadger(store.BadgerOptions(filepath.Join(dir, "badger")).WithLogger(newBadgerLog(n.cfg.Log, id)))
}

// cacheDir is partition id's cache under CacheDir.
func (n *Node) cacheDir(id uint32) string {
	return filepath.Join(n.cfg.CacheDir, "partitions", "p"+strconv.FormatUint(uint64(id), 10))
}

// applyMode sets cfg's log and store for the node's mode: the Kafka
// changelog as it is, or a local log (wal/local) with no ingest, under the
// ownership lease (lease.go: nothing fences a local log), and the
// write-through cache over the durable store.
func (n *Node) applyMode(spec registry.Partition, st localStore, cfg *partition.Config) error {
	durable := store.Store(st)
	// restored: the partition's store was whole once (its restore got as far
	// as the appender). Only then may its close take a final snapshot: one
	// of a store whose seed failed would hand over an empty partition.
	restored := &atomic.Bool{}
	appender := func(newAppender func(context.Context) (wal.Appender, error)) func(context.Context) (wal.Appender, error) {
		return func(ctx context.Context) (wal.Appender, error) {
			app, err := newAppender(ctx)
			if err != nil {
				return nil, err
			}
			if err := n.announce(ctx, spec); err != nil {
				// Unclaimed, it must not serve, in either mode: the next
				// owner's seed would not wait for its final snapshot and a
				// move would lose what it acknowledged. The restore is
				// retried until the bucket answers.
				app.Close()
				if errors.Is(err, snapshot.ErrNewerOwner) {
					return nil, fmt.Errorf("%w: %w", partition.ErrDeposed, err)
				}
				return nil, fmt.Errorf("claiming the partition in the snapshot bucket: %w", err)
			}
			restored.Store(true)
			return app, nil
		}
	}
	if n.cfg.WAL != WALKafka && n.cfg.OwnershipLease > 0 {
		// A local log cannot fence: the ownership lease does (lease.go).
		inner := appender
		appender = func(f func(context.Context) (wal.Appender, error)) func(context.Context) (wal.Appender, error) {
			return inner(n.leaseAppender(spec, f))
		}
		cfg.Lease, cfg.LeaseWait = leaseTimes(n.cfg.OwnershipLease)
	}
	// The Kafka changelog holds every acknowledged write: a store found
	// corrupt is emptied and restored from it (partition/corrupt.go). A
	// local log is the store: its partition stops, naming the corruption.
	cfg.DiscardCorrupt = n.cfg.WAL == WALKafka
	// A local log has no Kafka producers to fence (the ownership lease is
	// the fence), nothing compacts under its store, and no ingest.
	switch n.cfg.WAL {
	case WALDisk:
		log := local.NewDisk(st.(*store.Badger))
		durable = closeHook{Store: log.Store(), restored: restored, before: n.handOff(spec, st)}
		cfg.WAL, cfg.Ingest = opened{Log: log, newAppender: appender(log.NewAppender)}, nil
		cfg.Seed = n.seedHandoff(spec, st)
		cfg.Stages = local.DiskStages(cfg.Stages) // no value into badger's value log
	case WALNone:
		log := local.NewNone(st)
		durable = closeHook{Store: st, restored: restored, before: n.finalBackup(spec, st)}
		cfg.WAL, cfg.Ingest = opened{Log: log, newAppender: appender(log.NewAppender)}, nil
		cfg.Seed = n.seedHandoff(spec, st)
	}
	cfg.Store = durable
	if n.cfg.Store == StoreCached {
		log := n.cfg.Log.With().Uint32("partition", spec.ID).Str("dir", n.cacheDir(spec.ID)).Logger()
		c, err := store.OpenCached(durable, n.cacheDir(spec.ID))
		if err != nil {
			// The cache is disposable: it never stops a partition from
			// starting (a full or failing cache disk).
			log.Error().Err(err).Msg("write-through cache did not open: the partition serves from its durable store, without the cache, until it starts again")
			return nil
		}
		if c.Dropped != nil {
			log.Warn().Err(c.Dropped).Msg("the write-through cache found did not open: removed and made anew")
		}
		n.cfg.Log.Info().Uint32("partition", spec.ID).Bool("kept", c.Kept).Str("dir", n.cacheDir(spec.ID)).Msg("write-through cache open")
		cfg.Store = c
		cfg.WAL = opened{Log: cfg.WAL, newAppender: resyncCache(c, cfg.WAL.NewAppender, n.cfg.Log.With().Uint32("partition", spec.ID).Logger())}
	}
	return nil
}

// afterStart starts what a partition of the node's mode runs beside it: the
// backups of WAL none (backups.go).
func (n *Node) afterStart(h *held) {
	if n.cfg.WAL == WALNone {
		go n.backupEvery(h)
	}
}

// wipeCache removes a released partition's cache.
func (n *Node) wipeCache(id uint32) {
	if n.cfg.Store == StoreCached {
		os.RemoveAll(n.cacheDir(id))
	}
}

// closeHook runs before just before the store closes, if the partition had
// restored: after the partition stopped, so nothing changes it any more.
type closeHook struct {
	store.Store
	restored *atomic.Bool
	before   func()
}

func (c closeHook) Close() error {
	if c.restored.Load() {
		c.before()
	}
	return c.Store.Close()
}

// handOff is a disk partition's last act when it closes because it moved
// away or was removed: a final snapshot to the bucket, which the new owner
// restores. A close with the partition still ours (a restart) keeps the data
// on the disk and takes none.
func (n *Node) handOff(spec registry.Partition, st localStore) func() {
	return func() {
		if now, ok := n.registry.View().Partitions[spec.ID]; ok && now.Owner == n.cfg.NodeID {
			return
		}
		if n.bucket == nil {
			n.cfg.Log.Error().Uint32("partition", spec.ID).Msg("partition moved away from a --wal disk node without --snapshot-url: its data stays in this node's data directory only until it is wiped")
			return
		}
		n.finalBackup(spec, st)()
	}
}

// finalBackup snapshots a closed partition into the bucket, marked final:
// nothing after it was acknowledged at its epoch.
func (n *Node) finalBackup(spec registry.Partition, st localStore) func() {
	return func() {
		log := n.cfg.Log.With().Uint32("partition", spec.ID).Uint64("epoch", spec.Epoch).Logger()
		m, err := n.backup(context.Background(), spec, st, true)
		if err == nil {
			err = n.bucket.Finish(context.Background(), m, n.cfg.NodeID)
		}
		if errors.Is(err, snapshot.ErrNewerOwner) {
			log.Error().Err(err).Msg("final snapshot refused: a newer owner took the partition before this one handed it over (--handoff-timeout); what this owner acknowledged after the snapshot the newer owner restored is lost")
			return
		}
		if err != nil {
			log.Error().Err(err).Msg("final snapshot failed: the next owner restores an older one")
			return
		}
		log.Info().Str("snapshot", m.Name()).Int64("keys", m.Keys).Msg("final snapshot uploaded")
	}
}
