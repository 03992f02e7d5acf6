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
	f.Add([]byte(`{"format":1,"cluster":"c","partition":1,"range":{"from":0,"to":4},"epoch":2,"offsets":{"0":10},"keys":3,"bytes":99,"sha256":"` + string(bytes.Repeat([]byte("ab"), 32)) + `"}`))
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
