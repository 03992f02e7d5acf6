package snapshot

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gocloud.dev/blob/memblob"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/store"
)

// seedAt runs seed's steps from start, SeedPoll apart in a clock of its
// own, until it is done; before each step, at(step's time) may change the
// bucket. It returns handedOver and when the seed ended.
func seedAt(t *testing.T, s *Seed, st Target, start time.Time, at func(now time.Time)) (bool, time.Time) {
	t.Helper()
	now := start
	for range 1000 {
		if at != nil {
			at(now)
		}
		done, handedOver, err := s.Step(context.Background(), now, st)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return handedOver, now
		}
		now = now.Add(SeedPoll)
	}
	t.Fatal("the seed never ended")
	return false, now
}

// A new owner waits for the previous owner's final snapshot while the
// owner record names it unfinished, and restores the final one as soon as
// it comes (handed over); one that never comes is waited for Timeout, then
// the newest snapshot there is restored (not handed over). The waits are in
// the caller's time: Seed reads no clock.
func TestSeedWaitsForThePreviousOwnersFinalSnapshot(t *testing.T) {
	ctx := context.Background()
	for _, comes := range []bool{true, false} {
		b := NewBucket(memblob.OpenBucket(nil), "c", BucketOptions{})
		if err := b.Announce(ctx, 1, rng4, 5, "n1"); err != nil {
			t.Fatal(err)
		}
		early := putAtEpoch(t, b, filled(t, 3, "early"), 5, false)
		start := time.Unix(1_000_000, 0)
		finishAt := start.Add(3 * time.Second)
		finished := false
		s := &Seed{Bucket: b, Want: Want{Partition: 1, Range: rng4, Slots: 16}, Epoch: 6, Timeout: 10 * time.Second, Work: t.TempDir(), Log: zerolog.Nop()}
		st := store.NewMemory()
		handedOver, ended := seedAt(t, s, st, start, func(now time.Time) {
			if comes && !finished && !now.Before(finishAt) {
				final := putAtEpoch(t, b, filled(t, 7, "final"), 5, true)
				finished = true
				if err := b.Finish(ctx, final, "n1"); err != nil {
					t.Fatal(err)
				}
			}
		})
		n, _ := st.Len()
		switch {
		case comes && (!handedOver || n != 7 || ended.Sub(start) != 3*time.Second):
			t.Fatalf("the final snapshot came after 3 s: handed over %v, %d keys restored, after %s", handedOver, n, ended.Sub(start))
		case !comes && (handedOver || n != 3 || ended.Sub(start) <= 10*time.Second || ended.Sub(start) > 10*time.Second+SeedPoll):
			t.Fatalf("no final snapshot: handed over %v, %d keys restored (the newest there is, %s, has 3), after %s (timeout 10 s)", handedOver, n, early.Name(), ended.Sub(start))
		}
		b.Close()
	}
}

// An owner record of this epoch (a restart), a final one, or none: the
// newest snapshot at once; a new partition with nothing of its own carries
// its slots over from a removed one, after waiting for its final snapshot.
func TestSeedRestoresAtOnceOrCarriesOver(t *testing.T) {
	ctx := context.Background()
	b := NewBucket(memblob.OpenBucket(nil), "c", BucketOptions{})
	defer b.Close()
	putAtEpoch(t, b, filled(t, 4, "mine"), 6, false)
	if err := b.Announce(ctx, 1, rng4, 6, "n1"); err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_000_000, 0)
	st := store.NewMemory()
	s := &Seed{Bucket: b, Want: Want{Partition: 1, Range: rng4, Slots: 16}, Epoch: 6, Timeout: time.Minute, Work: t.TempDir(), Log: zerolog.Nop()}
	if handedOver, ended := seedAt(t, s, st, start, nil); handedOver || !ended.Equal(start) {
		t.Fatalf("a restart of epoch 6: handed over %v, after %s", handedOver, ended.Sub(start))
	}
	if n, _ := st.Len(); n != 4 {
		t.Fatalf("%d keys restored, want 4", n)
	}

	// Partition 2 over 0-4 never had a snapshot; partition 1 (removed) is
	// still uploading its final one.
	if err := b.Announce(ctx, 1, rng4, 6, "n1"); err != nil {
		t.Fatal(err)
	}
	st = store.NewMemory()
	s = &Seed{Bucket: b, Want: Want{Partition: 2, Range: keyspace.Range{From: 0, To: 4}, Slots: 16}, Epoch: 9, Timeout: time.Minute, Work: t.TempDir(), Log: zerolog.Nop()}
	finished := false
	_, ended := seedAt(t, s, st, start, func(now time.Time) {
		if !finished && !now.Before(start.Add(time.Second)) {
			m := putAtEpoch(t, b, filled(t, 20, "last"), 6, true)
			if err := b.Finish(ctx, m, "n1"); err != nil {
				t.Fatal(err)
			}
			finished = true
		}
	})
	want := 0 // the final snapshot's keys in slots 0-4 (of 16)
	for i := range 20 {
		if rng4.Contains(keyspace.Slot(fmt.Append(nil, "k", i), 16)) {
			want++
		}
	}
	if n, _ := st.Len(); n != want || ended.Sub(start) != time.Second {
		t.Fatalf("carried %d keys after %s; want the %d of partition 1's final snapshot in its slots, after 1 s", n, ended.Sub(start), want)
	}
}

// A bucket that fails fails the step: the caller retries, never starting
// empty.
func TestSeedFailsWithTheBucket(t *testing.T) {
	b := NewBucket(memblob.OpenBucket(nil), "c", BucketOptions{})
	b.Close()
	s := &Seed{Bucket: b, Want: Want{Partition: 1, Range: rng4, Slots: 16}, Epoch: 2, Timeout: time.Minute, Work: t.TempDir(), Log: zerolog.Nop()}
	done, _, err := s.Step(context.Background(), time.Unix(1, 0), store.NewMemory())
	if err == nil || done {
		t.Fatalf("a closed bucket: done %v, err %v", done, err)
	}
	if errors.Is(err, ErrCorrupt) {
		t.Fatalf("a failing bucket passed for a corrupt record: %v", err)
	}
}

// putAtEpoch uploads a snapshot of st as partition 1's (over rng4) at epoch.
func putAtEpoch(t *testing.T, b *Bucket, st Source, epoch uint64, final bool) Manifest {
	t.Helper()
	ctx := context.Background()
	m, dir, err := Write(ctx, st, t.TempDir(), Manifest{Cluster: "c", Partition: 1, Range: rng4, Slots: 16, Epoch: epoch, Final: final})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Upload(ctx, dir, m); err != nil {
		t.Fatal(err)
	}
	return m
}
