package partition

import "time"

// phases times a partition's restores so that the log tells each phase's
// duration (registry check, snapshot load, fence, replay in restore.go;
// lease wait and the whole restore here) and restart-to-serve can be read
// from it: a partition's first restore starts when it starts.
type phases struct {
	started  time.Time // the restore began
	restored time.Time // its result reached the core: the lease wait, if any, starts
	cause    string    // "start" or "re-sync"
}

// begin marks the start of restore number n (1: the partition's start).
func (ph *phases) begin(n int) {
	*ph = phases{started: time.Now(), cause: "re-sync"}
	if n == 1 {
		ph.cause = "start"
	}
}

// servingNow logs and measures a restore that ends in serving.
func (l *loop) servingNow() {
	p, ph := l.p, &l.phases
	now := time.Now()
	took := now.Sub(ph.started)
	p.metrics.served(took)
	ev := p.cfg.Log.Info().Str("phase", Serving.Step()).Str("cause", ph.cause)
	if !ph.restored.IsZero() {
		ev = ev.Dur("lease_wait", now.Sub(ph.restored))
	}
	ev.Dur("took", took).Msg("serving")
}
