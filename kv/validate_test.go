package kv

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

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
	ok := []Entry{{Key: bytes.Repeat([]byte("k"), MaxKeyBytes), Value: make([]byte, MaxBatchBytes-MaxKeyBytes)}}
	if err := ValidateBatch(ok); err != nil {
		t.Fatalf("batch at exactly the limits refused: %v", err)
	}
}

// An ingest record counts its headers: a record whose headers take it over
// the limit would not fit the log when forwarded or dead-lettered whole.
func TestValidateIngestCountsHeaders(t *testing.T) {
	r := IngestRecord{Key: []byte("k"), Value: make([]byte, MaxBatchBytes-1)}
	if err := ValidateIngest(r); err != nil {
		t.Fatalf("record at exactly the limit refused: %v", err)
	}
	r.Headers = []Header{{Key: "h", Value: []byte("x")}}
	if err := ValidateIngest(r); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "headers of 1048578 bytes") {
		t.Fatalf("record one header over the limit: %v", err)
	}
}

func TestReadLiveKeepsTheVersionOfAnExpiredValue(t *testing.T) {
	r := Read{Value: Value{Data: []byte("v"), Version: 4, ExpiresAt: 1000}, Found: true}
	if got := r.Live(timeMs(999)); !got.Found {
		t.Fatalf("live before expiry: %+v", got)
	}
	if got := r.Live(timeMs(1000)); got.Found || got.Value.Version != 4 || got.Value.Data != nil {
		t.Fatalf("expired read: %+v, want absent at version 4", got)
	}
	rm := Change{Key: []byte("k"), Remove: true, Version: 5}.Read()
	if rm.Found || rm.Value.Version != 5 {
		t.Fatalf("removal leaves %+v, want absent at version 5", rm)
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
