package snapshot

import (
	"bytes"
	"encoding/json"
	"testing"
)

// ReadManifest takes bytes from a bucket anyone may have written to: it must
// refuse garbage with ErrCorrupt, never panic, and what it accepts must
// re-encode to a manifest it accepts again.
func FuzzReadManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"cluster":"c","partition":1,"range":{"from":0,"to":4},"slots":16,"epoch":2,"created":"2025-01-02T03:04:05Z","offsets":{"0":10},"keys":3,"bytes":99,"sha256":"` + string(bytes.Repeat([]byte("ab"), 32)) + `"}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadManifest(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadManifest(bytes.NewReader(again)); err != nil {
			t.Fatalf("an accepted manifest does not survive re-encoding: %v", err)
		}
	})
}
