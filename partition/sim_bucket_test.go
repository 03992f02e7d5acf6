package partition

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
)

// simBlob is the simulator's snapshot bucket: gocloud's memblob behind a
// blob driver that injects the bucket's faults from the world's seed:
//
//   - a call fails (a 503, a reset connection): bucketFail;
//   - a manifest upload whose process pauses after the owner checks and
//     before its PUT (a GC pause, SIGSTOP): the write lands in the bucket
//     later (bucketLate), unless the process is killed meanwhile; the call
//     returns errSimLate, and the simulator carries on with what follows
//     the upload (a final snapshot's Finish) once it landed. A deposed
//     owner's backup taken before the new owner announced itself lands
//     this way after the new owner restored.
//
// landed tells the world each manifest as it reaches the bucket.
type simBlob struct {
	w      *world
	inner  *blob.Bucket
	writer *inst // the instance whose call this is (set around each)
	landed func(key string, by *inst)
	// deleted tells the world a manifest was deleted (pruned).
	deleted func(key string)
}

var (
	errSimBucket = errors.New("injected: bucket: 503 Service Unavailable")
	// errSimLate: the upload's process paused before its manifest's PUT,
	// which lands within simLateMax.
	errSimLate = errors.New("injected: the process paused before the manifest's PUT")
)

const simLateMax = 1500 * time.Millisecond

func newSimBucket(w *world, landed func(key string, by *inst), deleted func(key string)) (*simBlob, *blob.Bucket) {
	s := &simBlob{w: w, inner: memblob.OpenBucket(nil), landed: landed, deleted: deleted}
	return s, blob.NewBucket(s)
}

// fail says whether this call fails.
func (s *simBlob) fail() bool {
	if s.w.chance(s.w.faults.bucketFail) {
		s.w.injected["bucket-fail"]++
		return true
	}
	return false
}

func (s *simBlob) ErrorCode(err error) gcerrors.ErrorCode { return gcerrors.Code(err) }
func (s *simBlob) As(any) bool                            { return false }
func (s *simBlob) ErrorAs(error, any) bool                { return false }
func (s *simBlob) Close() error                           { return s.inner.Close() }

func (s *simBlob) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	if s.fail() {
		return nil, errSimBucket
	}
	a, err := s.inner.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{ContentType: a.ContentType, ModTime: a.ModTime, Size: a.Size, MD5: a.MD5, ETag: a.ETag}, nil
}

func (s *simBlob) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if s.fail() {
		return nil, errSimBucket
	}
	token := opts.PageToken
	if token == nil {
		token = blob.FirstPageToken
	}
	size := opts.PageSize
	if size <= 0 {
		size = 1000
	}
	objs, next, err := s.inner.ListPage(ctx, token, size, &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	if err != nil {
		return nil, err
	}
	page := &driver.ListPage{NextPageToken: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, &driver.ListObject{Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir})
	}
	return page, nil
}

func (s *simBlob) NewRangeReader(ctx context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	if s.fail() {
		return nil, errSimBucket
	}
	r, err := s.inner.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		return nil, err
	}
	return simReader{r}, nil
}

type simReader struct{ r *blob.Reader }

func (r simReader) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r simReader) Close() error               { return r.r.Close() }
func (r simReader) As(any) bool                { return false }
func (r simReader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ContentType: r.r.ContentType(), ModTime: r.r.ModTime(), Size: r.r.Size()}
}

func (s *simBlob) NewTypedWriter(ctx context.Context, key, contentType string, _ *driver.WriterOptions) (driver.Writer, error) {
	if s.fail() {
		return nil, errSimBucket
	}
	return &simWriter{s: s, ctx: ctx, key: key, contentType: contentType, by: s.writer}, nil
}

// simWriter buffers an upload and writes it at Close: now, later, or not.
type simWriter struct {
	s           *simBlob
	ctx         context.Context
	key         string
	contentType string
	by          *inst
	buf         bytes.Buffer
}

func (w *simWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }

func (w *simWriter) Close() error {
	s := w.s
	if w.ctx.Err() != nil {
		return w.ctx.Err() // an abandoned upload (gocloud cancels the write)
	}
	if s.fail() {
		return errSimBucket
	}
	data := append([]byte(nil), w.buf.Bytes()...)
	write := func() error {
		if err := s.inner.WriteAll(context.Background(), w.key, data, &blob.WriterOptions{ContentType: w.contentType}); err != nil {
			return err
		}
		if strings.HasSuffix(w.key, "/manifest.json") {
			s.landed(w.key, w.by)
		}
		return nil
	}
	if strings.HasSuffix(w.key, "/manifest.json") && w.by != nil && s.w.chance(s.w.faults.bucketLate) {
		s.w.injected["bucket-late-upload"]++
		by := w.by
		s.w.after(s.w.dur(50*time.Millisecond, simLateMax), func() {
			if by.killed {
				return // the process died before it sent the PUT
			}
			s.w.trace("i%d's late upload of %s lands", by.id, w.key)
			if err := write(); err != nil {
				panic(err)
			}
		})
		return errSimLate
	}
	return write()
}

func (s *simBlob) Copy(ctx context.Context, dstKey, srcKey string, _ *driver.CopyOptions) error {
	if s.fail() {
		return errSimBucket
	}
	return s.inner.Copy(ctx, dstKey, srcKey, nil)
}

func (s *simBlob) Delete(ctx context.Context, key string, _ *driver.DeleteOptions) error {
	if s.fail() {
		return errSimBucket
	}
	if err := s.inner.Delete(ctx, key); err != nil {
		return err
	}
	if strings.HasSuffix(key, "/manifest.json") {
		s.deleted(key)
	}
	return nil
}

func (s *simBlob) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errors.New("simBlob: no signed URLs")
}

var _ io.Closer = (*simWriter)(nil)
