package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// A SESSION read waits until its replica has applied the token's offsets of
// the slots it reads. A token names offsets that a write reached, so they
// exist in the changelog: an offset past the changelog's end is refused
// (INVALID_ARGUMENT, as Watch refuses it), and the wait is bounded anyway
// (a lagging standby, a mode without a changelog to check against).
const (
	// DefaultSessionWait bounds a SESSION read's wait for its offsets
	// (Data.SessionWait): past it the read answers UNAVAILABLE, ask again.
	DefaultSessionWait = 10 * time.Second
	// sessionGrace is how long a wait goes before the changelog's end is
	// read: a replica usually applies a fresh write's offset within it, so
	// most session reads never ask the changelog.
	sessionGrace = time.Second
)

// checkSession refuses a session token of another cluster, or naming a slot
// the cluster does not have or a negative offset.
func (d *Data) checkSession(s *sluicev1.Session, what string) error {
	if c := s.GetCluster(); c != "" && d.Cluster != "" && c != d.Cluster {
		return invalid("%s: a token of cluster %q, this is cluster %q", what, c, d.Cluster)
	}
	if len(s.GetOffsets()) == 0 {
		return nil
	}
	slots := d.Table().Slots()
	for slot, off := range s.GetOffsets() {
		switch {
		case slot < 0 || slot >= slots:
			return invalid("%s: slot %d is not one of the cluster's %d slots (a token of another cluster?)", what, slot, slots)
		case off < 0:
			return invalid("%s: slot %d has a negative offset %d", what, slot, off)
		}
	}
	return nil
}

// sessionWait is one SESSION read's waits: they share one deadline and one
// read of the changelog's end. Safe for concurrent use.
type sessionWait struct {
	d     *Data
	s     *sluicev1.Session
	limit time.Duration
	until time.Time

	mu  sync.Mutex
	end map[int32]int64 // nil until read
}

func (d *Data) sessionWait(s *sluicev1.Session) *sessionWait {
	limit := d.SessionWait
	if limit <= 0 {
		limit = DefaultSessionWait
	}
	return &sessionWait{d: d, s: s, limit: limit, until: time.Now().Add(limit)}
}

// wait waits until rd has applied the token's offset of slot: the request's
// deadline, capped at the session wait. An offset past the changelog's end
// is INVALID_ARGUMENT; one not applied in time is UNAVAILABLE.
func (w *sessionWait) wait(ctx context.Context, rd CommittedReader, slot int32) error {
	off := w.s.GetOffsets()[slot]
	if off <= 0 {
		return nil
	}
	grace, cancel := context.WithDeadline(ctx, minTime(w.until, time.Now().Add(sessionGrace)))
	err := rd.WaitApplied(grace, slot, off)
	cancel()
	if err == nil || ctx.Err() != nil || grace.Err() == nil {
		return err
	}
	if err := w.checkEnd(ctx, slot, off); err != nil {
		return err
	}
	capped, cancel := context.WithDeadline(ctx, w.until)
	defer cancel()
	err = rd.WaitApplied(capped, slot, off)
	if err != nil && ctx.Err() == nil && capped.Err() != nil {
		return notApplied(codes.Unavailable, fmt.Sprintf("session: slot %d offset %d is not applied on this replica within the session wait of %v; ask again", slot, off, w.limit))
	}
	return err
}

// checkEnd refuses off if it is past the changelog's end of slot. Without a
// changelog, or if its end cannot be read, only the capped wait bounds the
// read.
func (w *sessionWait) checkEnd(ctx context.Context, slot int32, off int64) error {
	if w.d.Changelog == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.end == nil || off > w.end[slot] { // read again: a write may have reached it since
		// Within the session wait: a changelog whose broker hangs must
		// not hold the read past it (a RESP connection has no deadline).
		bounded, cancel := context.WithDeadline(ctx, w.until)
		b, err := w.d.Changelog.Bounds(bounded)
		cancel()
		if err != nil {
			return nil
		}
		w.end = b.End
	}
	if end := w.end[slot]; off > end {
		return invalid("session: slot %d offset %d is past the changelog's end, %d (a token of another cluster?)", slot, off, end)
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
