package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:///path
	_ "gocloud.dev/blob/s3blob"   // s3://bucket?region=...
	"gocloud.dev/gcerrors"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/store"
)

// Bucket keeps a cluster's snapshots in blob storage under
// <cluster>/p<partition>/<name>/{data.backup,manifest.json}.
type Bucket struct {
	b       *blob.Bucket
	cluster string
	keep    int
}

// OpenBucket opens the blob URL (file://, s3://, … through gocloud.dev/blob);
// keep is how many snapshots per partition Upload leaves (default 3).
func OpenBucket(ctx context.Context, url, cluster string, keep int) (*Bucket, error) {
	b, err := blob.OpenBucket(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("snapshot: opening %s: %w", url, err)
	}
	if keep <= 0 {
		keep = 3
	}
	return &Bucket{b: b, cluster: cluster, keep: keep}, nil
}

// Close releases the bucket.
func (b *Bucket) Close() error { return b.b.Close() }

func (b *Bucket) dir(partition uint32) string { return fmt.Sprintf("%s/p%d/", b.cluster, partition) }

// Upload copies a snapshot folder into the bucket, the data first and the
// manifest last (a snapshot without a manifest is never chosen), then deletes
// all but the newest keep snapshots of the partition.
func (b *Bucket) Upload(ctx context.Context, dir string, m Manifest) error {
	prefix := b.dir(m.Partition) + m.Name() + "/"
	for _, name := range []string{DataFile, ManifestFile} {
		if err := b.put(ctx, prefix+name, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	names, err := b.List(ctx, m.Partition)
	if err != nil {
		return err
	}
	for _, old := range names[min(len(names), b.keep):] {
		for _, name := range []string{ManifestFile, DataFile} { // manifest first: never half a snapshot that looks whole
			if err := b.b.Delete(ctx, b.dir(m.Partition)+old+"/"+name); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	return nil
}

func (b *Bucket) put(ctx context.Context, key, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := b.b.NewWriter(ctx, key, nil)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		w.Close()
		return fmt.Errorf("snapshot: uploading %s: %w", key, err)
	}
	return w.Close()
}

// List returns the names of the partition's complete snapshots (those with a
// manifest), newest first.
func (b *Bucket) List(ctx context.Context, partition uint32) ([]string, error) {
	it := b.b.List(&blob.ListOptions{Prefix: b.dir(partition)})
	var names []string
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		rest := strings.TrimPrefix(obj.Key, b.dir(partition))
		if name, file := path.Split(rest); file == ManifestFile && strings.Count(name, "/") == 1 {
			names = append(names, strings.TrimSuffix(name, "/"))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	return names, nil
}

// download copies one snapshot into dir.
func (b *Bucket) download(ctx context.Context, partition uint32, name, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, file := range []string{ManifestFile, DataFile} {
		r, err := b.b.NewReader(ctx, b.dir(partition)+name+"/"+file, nil)
		if err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			r.Close()
			return err
		}
		_, err = io.Copy(f, r)
		r.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Restore loads into st (empty) the newest snapshot of the partition that
// covers rng and passes its checksum; a corrupt one is logged and skipped for
// the one before it. ok is false when there is none: replay from the start.
func (b *Bucket) Restore(ctx context.Context, partition uint32, rng keyspace.Range, st *store.Badger, work string, log zerolog.Logger) (Manifest, bool, error) {
	names, err := b.List(ctx, partition)
	if err != nil {
		return Manifest{}, false, err
	}
	for _, name := range names {
		dir := filepath.Join(work, name)
		start := time.Now()
		err := b.download(ctx, partition, name, dir)
		var m Manifest
		if err == nil {
			m, err = Verify(dir)
		}
		if err == nil && m.Range != rng {
			err = fmt.Errorf("snapshot %s covers %s, the partition %s", name, m.Range, rng)
		}
		if err != nil {
			os.RemoveAll(dir)
			log.Warn().Err(err).Str("snapshot", name).Msg("snapshot unusable; trying the one before it")
			continue
		}
		if _, err := Load(dir, st); err != nil {
			os.RemoveAll(dir)
			// A half-loaded store must not be taken for a whole one.
			return m, false, errors.Join(err, st.DB().DropAll())
		}
		os.RemoveAll(dir)
		took := time.Since(start)
		log.Info().Str("snapshot", name).Int64("keys", m.Keys).Int64("bytes", m.Bytes).Dur("took", took).
			Float64("mb_per_sec", float64(m.Bytes)/1e6/took.Seconds()).Msg("restored from snapshot; replaying the changelog from its offsets")
		return m, true, nil
	}
	return Manifest{}, false, nil
}

func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }
