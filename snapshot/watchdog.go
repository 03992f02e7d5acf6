package snapshot

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// watchdog bounds one call to the blob store: the call runs under ctx, which
// is cancelled when the watchdog is not fed for d. Every sign of progress
// (a byte moved, a listing page, an answer) feeds it, so a slow transfer
// goes on while a store that stops answering fails the call instead of
// hanging it (and with it a restore, or a release waiting for an upload).
type watchdog struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	d      time.Duration
	mu     sync.Mutex
	t      *time.Timer
}

func newWatchdog(ctx context.Context, d time.Duration) *watchdog {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{ctx: ctx, cancel: cancel, d: d}
	w.t = time.AfterFunc(d, func() { cancel(fmt.Errorf("%w for %s", ErrStalled, d)) })
	return w
}

// feed records progress: the deadline moves d from now.
func (w *watchdog) feed() {
	w.mu.Lock()
	w.t.Reset(w.d)
	w.mu.Unlock()
}

// done ends the call's watch.
func (w *watchdog) done() {
	w.mu.Lock()
	w.t.Stop()
	w.mu.Unlock()
	w.cancel(nil)
}

// explain returns err, naming the stall or cancellation that caused it.
func (w *watchdog) explain(err error) error {
	if err == nil || w.ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("%w: %w", context.Cause(w.ctx), err)
}

// progressReader feeds its watchdog on every read that moves bytes.
type progressReader struct {
	r io.Reader
	w *watchdog
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.w.feed()
	}
	return n, err
}
