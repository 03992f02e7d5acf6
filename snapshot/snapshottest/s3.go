// Package snapshottest serves a fake S3 endpoint for tests of what a blob
// store that stops answering does to sluice. It speaks just enough S3 for
// gocloud.dev/blob/s3blob: an empty listing and "no such key"; the requests
// it is told to hang it never answers.
//
//	s := snapshottest.NewS3(t, snapshottest.HangWrites)
//	b, _ := snapshot.OpenBucket(ctx, s.URL("bucket"), "c", snapshot.BucketOptions{})
package snapshottest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Mode says which requests the fake never answers.
type Mode int

const (
	// HangWrites leaves every PUT, POST and DELETE unanswered; listings
	// are empty and reads find nothing.
	HangWrites Mode = iota + 1
	// HangAll leaves every request unanswered.
	HangAll
)

// S3 is the fake endpoint.
type S3 struct {
	srv  *httptest.Server
	mode Mode
	quit chan struct{}
	hung atomic.Int64
	once sync.Once
	// Hung is closed when the first request is left hanging.
	Hung chan struct{}
}

// NewS3 starts a fake S3 endpoint, closed when the test ends.
func NewS3(t testing.TB, mode Mode) *S3 {
	s := &S3{mode: mode, quit: make(chan struct{}), Hung: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.quit)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

// URL is a gocloud blob URL of bucket on the fake.
func (s *S3) URL(bucket string) string {
	q := url.Values{"endpoint": {s.srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"}, "anonymous": {"true"}}
	return "s3://" + bucket + "?" + q.Encode()
}

// HungRequests counts the requests left unanswered so far.
func (s *S3) HungRequests() int64 { return s.hung.Load() }

func (s *S3) serve(w http.ResponseWriter, r *http.Request) {
	if s.mode == HangAll || r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.hung.Add(1)
		s.once.Do(func() { close(s.Hung) })
		select {
		case <-r.Context().Done():
		case <-s.quit:
		}
		return
	}
	if r.URL.Query().Has("list-type") || r.URL.Query().Has("prefix") {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`))
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>`))
}
