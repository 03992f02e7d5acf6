package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestForeverRetriesUntilSuccess(t *testing.T) {
	tries := 0
	var waits []time.Duration
	got, err := Forever(context.Background(), func() (int, error) {
		tries++
		if tries < 3 {
			return 0, errors.New("not yet")
		}
		return 42, nil
	}, func(err error, wait time.Duration) { waits = append(waits, wait) })
	if err != nil || got != 42 || tries != 3 || len(waits) != 2 {
		t.Fatalf("Forever = %d, %v after %d tries and waits %v", got, err, tries, waits)
	}
	if waits[0] < 160*time.Millisecond || waits[0] > 240*time.Millisecond || waits[1] < 320*time.Millisecond || waits[1] > 480*time.Millisecond {
		t.Fatalf("waits %v, want about 200 ms then 400 ms", waits)
	}
}

func TestForeverStopsOnPermanentAndOnCancel(t *testing.T) {
	boom := errors.New("boom")
	tries := 0
	if _, err := Forever(context.Background(), func() (int, error) { tries++; return 0, Permanent(boom) }, nil); !errors.Is(err, boom) || tries != 1 {
		t.Fatalf("a permanent error: %v after %d tries", err, tries)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tries = 0
	_, err := Forever(ctx, func() (int, error) { tries++; cancel(); return 0, boom }, nil)
	if !errors.Is(err, context.Canceled) || tries != 1 {
		t.Fatalf("a cancelled context: %v after %d tries", err, tries)
	}
}

func TestPolicyCapsTheWait(t *testing.T) {
	b := Policy()
	var last time.Duration
	for range 20 {
		last = b.NextBackOff()
	}
	if last > 6*time.Second || last < 4*time.Second {
		t.Fatalf("wait after 20 tries %v, want about 5 s", last)
	}
}

func TestTriesStopsAtItsBoundAndKeepsTheLastError(t *testing.T) {
	calls := 0
	err := Tries(context.Background(), 3, ClientPolicy(), func(attempt int) (bool, error) {
		if attempt != calls {
			t.Fatalf("attempt %d on call %d", attempt, calls)
		}
		calls++
		return true, errors.New("still failing")
	})
	if calls != 3 || err == nil || err.Error() != "still failing" {
		t.Fatalf("Tries = %v after %d calls, want the last error after 3", err, calls)
	}
	calls = 0
	if err := Tries(context.Background(), 10, ClientPolicy(), func(int) (bool, error) { calls++; return false, nil }); err != nil || calls != 1 {
		t.Fatalf("a success: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls = 0
	if err := Tries(ctx, 10, ClientPolicy(), func(int) (bool, error) { calls++; return true, errors.New("down") }); err == nil || calls != 1 {
		t.Fatalf("an ended context: %v after %d calls", err, calls)
	}
}
