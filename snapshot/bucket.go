package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:///path
	_ "gocloud.dev/blob/s3blob"   // s3://bucket?region=...
	"gocloud.dev/gcerrors"
)

// Bucket keeps a cluster's snapshots in blob storage under
// <cluster>/p<partition>/<name>/{data.backup,manifest.json}.
type Bucket struct {
	b       *blob.Bucket
	cluster string
	keep    int
	timeout time.Duration
}

// BucketOptions tune a Bucket. Zero values take the defaults written on
// each field.
type BucketOptions struct {
	// Keep is how many snapshots per partition Upload leaves. Default 3.
	Keep int
	// Timeout bounds every call to the blob store: a call that makes no
	// progress (no byte moved, no listing page, no answer) for this long is
	// cancelled with ErrStalled. Default DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout is a blob call's default Timeout: long enough for a slow
// store to move the next part of an upload (8 MiB), short enough that a
// hung one is noticed.
const DefaultTimeout = time.Minute

// OpenBucket opens the blob URL (file://, s3://, … through gocloud.dev/blob).
// A file:// bucket makes its folders 0700 unless the URL sets dir_file_mode:
// snapshots are full copies of the data.
func OpenBucket(ctx context.Context, rawURL, cluster string, opts BucketOptions) (*Bucket, error) {
	if u, err := url.Parse(rawURL); err == nil && u.Scheme == "file" {
		q := u.Query()
		if !q.Has("dir_file_mode") {
			q.Set("dir_file_mode", fmt.Sprintf("%#o", DirMode))
			u.RawQuery = q.Encode()
			rawURL = u.String()
		}
	}
	b, err := blob.OpenBucket(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("snapshot: opening %s: %w", rawURL, err)
	}
	return NewBucket(b, cluster, opts), nil
}

// NewBucket keeps cluster's snapshots in b, an open blob bucket (the
// partition simulator's is in memory, with faults). Close closes b.
func NewBucket(b *blob.Bucket, cluster string, opts BucketOptions) *Bucket {
	if opts.Keep <= 0 {
		opts.Keep = 3
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Bucket{b: b, cluster: cluster, keep: opts.Keep, timeout: opts.Timeout}
}

// Close releases the bucket.
func (b *Bucket) Close() error { return b.b.Close() }

func (b *Bucket) dir(partition uint32) string { return fmt.Sprintf("%s/p%d/", b.cluster, partition) }

func (b *Bucket) watch(ctx context.Context) *watchdog { return newWatchdog(ctx, b.timeout) }

// Upload copies a snapshot folder into the bucket, the data first and the
// manifest last (a snapshot without a manifest is never chosen), then deletes
// all but the newest keep snapshots of the partition (newest as Restore
// chooses: by epoch, then offsets). Cancelling ctx stops it.
//
// A snapshot taken at an epoch below the partition's owner record (its
// owner's, handoff.go) is refused with ErrNewerOwner: it is a deposed owner's
// (a final snapshot that came after the hand-off timed out, an owner paused
// or cut off), and the new owner has served since without its last writes.
// The pruning never deletes the record's owner's newest snapshot.
func (b *Bucket) Upload(ctx context.Context, dir string, m Manifest) error {
	if _, _, err := b.uploader(ctx, m); err != nil {
		return err
	}
	prefix := b.dir(m.Partition) + m.Name() + "/"
	if err := b.put(ctx, prefix+DataFile, filepath.Join(dir, DataFile)); err != nil {
		return err
	}
	// Again just before the manifest makes the snapshot whole: a new owner
	// may have announced itself while the data was uploading.
	o, owned, err := b.uploader(ctx, m)
	if errors.Is(err, ErrNewerOwner) {
		return errors.Join(err, b.delete(ctx, prefix+DataFile))
	}
	if err != nil {
		return err
	}
	if err := b.put(ctx, prefix+ManifestFile, filepath.Join(dir, ManifestFile)); err != nil {
		return err
	}
	return b.prune(ctx, m, o, owned)
}

// uploader returns the owner record of m's partition, or ErrNewerOwner if
// it names an epoch above m's: m is a deposed owner's.
func (b *Bucket) uploader(ctx context.Context, m Manifest) (o Owner, owned bool, err error) {
	o, owned, err = b.Owner(ctx, m.Partition)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return o, false, err
	}
	if owned && o.Epoch > m.Epoch {
		return o, owned, fmt.Errorf("%w: epoch %d on %s; this snapshot was taken at epoch %d by a deposed owner, and is not uploaded", ErrNewerOwner, o.Epoch, o.Node, m.Epoch)
	}
	return o, owned, nil
}

// prune deletes all but the newest keep snapshots of like's partition, and
// never the newest one of owner (if owned) at its epoch.
func (b *Bucket) prune(ctx context.Context, like Manifest, owner Owner, owned bool) error {
	names, err := b.List(ctx, like.Partition)
	if err != nil {
		return err
	}
	ls, err := b.newestFirst(ctx, like, names)
	if err != nil {
		return err
	}
	ownersNewest := -1
	if owned {
		ownersNewest = slices.IndexFunc(ls, func(l listed) bool { return l.err == nil && l.m.Epoch == owner.Epoch })
	}
	for i := min(len(ls), b.keep); i < len(ls); i++ {
		if i == ownersNewest {
			continue
		}
		for _, name := range []string{ManifestFile, DataFile} { // manifest first: never half a snapshot that looks whole
			if err := b.delete(ctx, b.dir(like.Partition)+ls[i].name+"/"+name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Bucket) delete(ctx context.Context, key string) error {
	w := b.watch(ctx)
	defer w.done()
	if err := b.b.Delete(w.ctx, key); err != nil && !isNotFound(err) {
		return w.explain(fmt.Errorf("snapshot: deleting %s: %w", key, err))
	}
	return nil
}

func (b *Bucket) put(ctx context.Context, key, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	w := b.watch(ctx)
	defer w.done()
	bw, err := b.b.NewWriter(w.ctx, key, nil)
	if err != nil {
		return w.explain(err)
	}
	if _, err := io.Copy(bw, progressReader{f, w}); err != nil {
		bw.Close()
		return w.explain(fmt.Errorf("snapshot: uploading %s: %w", key, err))
	}
	if err := bw.Close(); err != nil {
		return w.explain(fmt.Errorf("snapshot: uploading %s: %w", key, err))
	}
	return nil
}

// List returns the names of the partition's complete snapshots (those with a
// manifest), by name (the writer's clock), newest first. Restore and Upload
// order them by their manifests' epochs and offsets instead.
func (b *Bucket) List(ctx context.Context, partition uint32) ([]string, error) {
	w := b.watch(ctx)
	defer w.done()
	it := b.b.List(&blob.ListOptions{Prefix: b.dir(partition)})
	var names []string
	for {
		obj, err := it.Next(w.ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, w.explain(fmt.Errorf("snapshot: listing %s: %w", b.dir(partition), err))
		}
		w.feed()
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
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	for _, file := range []string{ManifestFile, DataFile} {
		if err := b.get(ctx, b.dir(partition)+name+"/"+file, filepath.Join(dir, file)); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bucket) get(ctx context.Context, key, file string) error {
	w := b.watch(ctx)
	defer w.done()
	r, err := b.b.NewReader(w.ctx, key, nil)
	if err != nil {
		return w.explain(fmt.Errorf("snapshot: downloading %s: %w", key, err))
	}
	defer r.Close()
	f, err := create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, progressReader{r, w})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return w.explain(fmt.Errorf("snapshot: downloading %s: %w", key, err))
	}
	return nil
}

func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }
