// Package snapshot writes, verifies, uploads and restores partition snapshots.
//
// A snapshot is a folder: data.backup (the partition's Badger state as of one
// read transaction, in badger's backup format) and manifest.json (written
// last; a folder without one is incomplete and never chosen). Restore = the
// newest snapshot (by its epoch, then its offsets) of this cluster,
// partition, range and slot count, younger than the changelog keeps
// tombstones, that passes its checksum + replay of the changelog from the
// offsets it holds. A partition of --wal disk or none with no snapshot of its
// own carries its slots' data over from the partitions that held them before
// (Carry, carry.go).
//
//	parent, err := snapshot.Confine("/backups", "nightly") // /backups/nightly; "../x" or "/etc" are refused
//	m, dir, err := snapshot.Write(ctx, st, parent, snapshot.Manifest{Cluster: "sluice", Partition: 1, ...})
//	b, _ := snapshot.OpenBucket(ctx, "file:///mnt/snapshots", "sluice", snapshot.BucketOptions{Keep: 3})
//	err = b.Upload(ctx, dir, m) // data first, manifest last; keeps the newest 3
//	m, ok, err := b.Restore(ctx, snapshot.Want{Partition: 1, Range: rng, Slots: 16, MaxAge: 7 * 24 * time.Hour}, freshStore, work, log)
package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicedb/sluice/keyspace"
)

// Format is the manifest format this code writes and reads.
const Format = 1

// File names inside a snapshot folder.
const (
	DataFile     = "data.backup"
	ManifestFile = "manifest.json"
)

// Manifest describes a snapshot.
type Manifest struct {
	Format    int            `json:"format"`
	Cluster   string         `json:"cluster"`
	Partition uint32         `json:"partition"`
	Range     keyspace.Range `json:"range"`
	// Slots is the cluster's slot count when the snapshot was taken.
	Slots int32  `json:"slots"`
	Epoch uint64 `json:"epoch"`
	// Offsets is the next changelog offset of every slot the data reaches:
	// restore replays from here.
	Offsets map[int32]int64 `json:"offsets"`
	// Ingest is the next ingest offset of every slot the data has consumed.
	Ingest  map[int32]int64 `json:"ingest_offsets"`
	Keys    int64           `json:"keys"`
	Bytes   int64           `json:"bytes"`
	Created time.Time       `json:"created"`
	// SHA256 is the hex checksum of data.backup.
	SHA256 string `json:"sha256"`
	// WAL is the write-ahead log of the node that took it (--wal: "kafka",
	// "disk", "none"); empty in snapshots from before storage modes (kafka).
	WAL string `json:"wal,omitempty"`
	// Final: taken after the partition stopped at this epoch (a graceful
	// close, or a hand-off to a new owner): nothing after it was acknowledged.
	Final bool `json:"final,omitempty"`
}

// Name is the snapshot's folder name: sortable by time.
func (m Manifest) Name() string {
	return fmt.Sprintf("%s-e%d", m.Created.UTC().Format("20060102T150405.000000000Z"), m.Epoch)
}

// Modes of what Write and a restore's download create: a snapshot is a full
// copy of a partition's data, readable by the node's user only.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

// Write snapshots st into parent/<name>, filling in m's offsets, counts,
// size, time and checksum. It writes into <name>.tmp and renames it when
// both files are complete, so a crash leaves no folder that looks whole.
// Cancelling ctx stops the write and removes what it wrote.
func Write(ctx context.Context, st Source, parent string, m Manifest) (Manifest, string, error) {
	m.Format, m.Created = Format, time.Now().UTC()
	if err := m.Range.Validate(m.Slots); err != nil {
		return m, "", fmt.Errorf("snapshot: the manifest's slot count (Slots %d) must cover its range: %w", m.Slots, err)
	}
	final := filepath.Join(parent, m.Name())
	tmp := final + ".tmp"
	if err := os.MkdirAll(tmp, DirMode); err != nil {
		return m, "", err
	}
	f, err := create(filepath.Join(tmp, DataFile))
	if err != nil {
		return m, "", err
	}
	h := sha256.New()
	cw := &countWriter{ctx: ctx, w: io.MultiWriter(f, h)}
	info, err := st.Snapshot(cw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(tmp)
		return m, "", fmt.Errorf("snapshot: writing data: %w", err)
	}
	m.Offsets, m.Ingest, m.Keys, m.Bytes, m.SHA256 = info.Offsets, info.Ingest, info.Keys, cw.n, hex.EncodeToString(h.Sum(nil))
	if err := writeManifest(filepath.Join(tmp, ManifestFile), m); err != nil {
		os.RemoveAll(tmp)
		return m, "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return m, "", err
	}
	return m, final, nil
}

func writeManifest(path string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadManifest reads and checks a manifest.
func ReadManifest(r io.Reader) (Manifest, error) {
	var m Manifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return m, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("%w: manifest format %d, this sluice reads %d", ErrCorrupt, m.Format, Format)
	}
	if len(m.SHA256) != 64 || m.Range.From >= m.Range.To || m.Bytes < 0 || m.Slots < 0 || m.Created.IsZero() {
		return m, fmt.Errorf("%w: manifest fields out of range", ErrCorrupt)
	}
	return m, nil
}

// Verify checks a snapshot folder: its manifest reads and its data matches the
// manifest's size and checksum.
func Verify(dir string) (Manifest, error) {
	mf, err := os.Open(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	m, err := ReadManifest(mf)
	mf.Close()
	if err != nil {
		return m, err
	}
	f, err := os.Open(filepath.Join(dir, DataFile))
	if err != nil {
		return m, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return m, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != m.Bytes || got != m.SHA256 {
		return m, fmt.Errorf("%w: %s: data is %d bytes with sha256 %s, the manifest says %d bytes with %s", ErrCorrupt, dir, n, got[:12], m.Bytes, m.SHA256[:12])
	}
	return m, nil
}

// Load verifies the snapshot in dir and loads it into st, which must be empty.
func Load(dir string, st Target) (Manifest, error) {
	m, err := Verify(dir)
	if err != nil {
		return m, err
	}
	f, err := os.Open(filepath.Join(dir, DataFile))
	if err != nil {
		return m, err
	}
	defer f.Close()
	return m, st.LoadSnapshot(f)
}

// create makes a new file readable by the node's user only.
func create(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, FileMode)
}

// countWriter counts what it writes and fails once ctx is done, which
// stops the store's backup stream.
type countWriter struct {
	ctx context.Context
	w   io.Writer
	n   int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
