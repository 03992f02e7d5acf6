package pipeline

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestClockMonotonicWhenWallStallsOrStepsBack(t *testing.T) {
	wall := time.UnixMilli(1_700_000_000_000)
	c := NewClock(0)
	c.now = func() time.Time { return wall }
	a := c.Now()
	b := c.Now()
	wall = wall.Add(-time.Hour) // the wall clock steps back
	d := c.Now()
	if !(a < b && b < d) {
		t.Fatalf("stamps not increasing: %d %d %d", a, b, d)
	}
	wall = time.UnixMilli(1_800_000_000_000)
	e := c.Now()
	if e != uint64(1_800_000_000_000)<<16 || WallTime(e) != wall {
		t.Fatalf("clock did not follow the wall forward: %d", e)
	}
}

func TestClockFloorAndObserve(t *testing.T) {
	floor := uint64(time.Now().Add(time.Hour).UnixMilli()) << 16
	c := NewClock(floor)
	if ts := c.Now(); ts <= floor {
		t.Fatalf("Now %d not above floor %d", ts, floor)
	}
	c.Observe(floor + 100)
	if ts := c.Now(); ts != floor+101 {
		t.Fatalf("Now after Observe = %d", ts)
	}
}

func TestValidate(t *testing.T) {
	big := make([]byte, MaxBatchBytes)
	cases := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"no entries", nil, "no entries"},
		{"empty key", []Entry{{Key: nil, Value: []byte("v")}}, "empty key"},
		{"key too large", []Entry{{Key: make([]byte, MaxKeyBytes+1)}}, "limit of 4096 bytes"},
		{"batch too large", []Entry{{Key: []byte("k"), Value: big}}, "limit of 1048576 bytes"},
		{"reserved key", []Entry{{Key: []byte("\x00sluice"), Value: []byte("v")}}, "reserved"},
	}
	for _, tc := range cases {
		err := ValidateBatch(tc.entries)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := ValidateEntry([]byte("k"), big); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("oversized entry: %v", err)
	}
	ok := []Entry{{Key: bytes.Repeat([]byte("k"), MaxKeyBytes), Value: make([]byte, MaxBatchBytes-MaxKeyBytes)}}
	if err := ValidateBatch(ok); err != nil {
		t.Fatalf("batch at exactly the limits refused: %v", err)
	}
}

func TestLineMonitorReleasesInOrderOnlyAfterCommit(t *testing.T) {
	m := NewLineMonitor(3)
	var got []int
	hold := func(group uint64, id int) {
		m.Hold(group, func(err error) {
			if err != nil {
				id = -id
			}
			got = append(got, id)
		})
	}
	hold(1, 1)
	hold(1, 2)
	hold(2, 3)
	if !m.Full() {
		t.Fatal("window of 3 not full")
	}
	m.Commit(0)
	if len(got) != 0 {
		t.Fatalf("released before commit: %v", got)
	}
	m.Commit(1)
	if len(got) != 2 || got[0] != 1 || got[1] != 2 || m.Len() != 1 {
		t.Fatalf("after commit 1: %v (len %d)", got, m.Len())
	}
	hold(3, 4)
	hold(4, 5)
	m.FailFrom(4, errors.New("never appended"))
	if len(got) != 3 || got[2] != -5 || m.Len() != 2 {
		t.Fatalf("FailFrom: %v", got)
	}
	m.FailAll(func(uint64) error { return errors.New("append failed") })
	if len(got) != 5 || got[3] != -3 || got[4] != -4 || m.Len() != 0 {
		t.Fatalf("FailAll: %v", got)
	}
}

// Validation takes any bytes a client sends: it never panics, and an
// accepted batch is within every limit.
func FuzzValidateBatch(f *testing.F) {
	f.Add([]byte("k"), []byte("v"), 1)
	f.Add([]byte{0}, []byte{}, 3)
	f.Add([]byte(""), []byte("v"), 0)
	f.Fuzz(func(t *testing.T, key, value []byte, n int) {
		n = n%8 + 1
		if n < 1 {
			n = 1
		}
		entries := make([]Entry, n)
		for i := range entries {
			entries[i] = Entry{Key: key, Value: value}
		}
		if err := ValidateBatch(entries); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("an error that is not InvalidArgument: %v", err)
			}
			return
		}
		if len(key) == 0 || len(key) > MaxKeyBytes || key[0] == 0 || n*(len(key)+len(value)) > MaxBatchBytes {
			t.Fatalf("accepted %d entries of a %d-byte key and a %d-byte value", n, len(key), len(value))
		}
	})
}
