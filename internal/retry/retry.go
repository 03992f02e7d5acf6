// Package retry is sluice's one way to retry: exponential backoff from
// cenkalti/backoff, 200 ms doubling to 5 s with jitter, until the work
// succeeds, fails for good, or its context ends.
//
//	app, err := retry.Forever(ctx, func() (wal.Appender, error) { return open(ctx) },
//		func(err error, wait time.Duration) { log.Error().Err(err).Dur("retry_in", wait).Msg("restore failed") })
//
// Return backoff.Permanent(err) from the work to stop at once.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy is the backoff between tries: 200 ms, doubling, at most 5 s, each
// wait jittered by ±20 % so many retrying clients do not move in step.
func Policy() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.Multiplier = 2
	b.MaxInterval = 5 * time.Second
	b.RandomizationFactor = 0.2
	return b
}

// Forever runs work until it succeeds, returns an error wrapped by
// backoff.Permanent, or ctx ends (then ctx's cause is returned). Each failure
// is told to notify, if set, with the wait before the next try.
func Forever[T any](ctx context.Context, work func() (T, error), notify func(err error, wait time.Duration)) (T, error) {
	opts := []backoff.RetryOption{backoff.WithBackOff(Policy()), backoff.WithMaxElapsedTime(0)}
	if notify != nil {
		opts = append(opts, backoff.WithNotify(notify))
	}
	return backoff.Retry(ctx, work, opts...)
}

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return backoff.Permanent(err) }

// ClientPolicy is the backoff of a client retrying a call: 10 ms, doubling,
// at most 500 ms, each wait jittered by ±50 %.
func ClientPolicy() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 10 * time.Millisecond
	b.Multiplier = 2
	b.MaxInterval = 500 * time.Millisecond
	b.RandomizationFactor = 0.5
	return b
}

// Tries runs work (attempt 0, 1, ...) until it says not to try again, n
// tries were made, or ctx ends, waiting as policy says between tries. It
// returns work's last error: a caller whose deadline ends mid-retry learns
// why the last try failed, not only that time ran out.
func Tries(ctx context.Context, n int, policy backoff.BackOff, work func(attempt int) (again bool, err error)) error {
	policy.Reset()
	for attempt := 0; ; attempt++ {
		again, err := work(attempt)
		if !again || attempt+1 >= n {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(policy.NextBackOff()):
		}
	}
}
