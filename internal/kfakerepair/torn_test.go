package kfakerepair

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A kill while kfake wrote the commit markers of a transaction over a and
// b, then a torn write at the end of b's segment (a power cut, a full
// disk). The repair commits b's part: its marker must not go after the
// torn bytes (kfake truncates there and would drop it, aborting b's part),
// and a second repair of the repaired log does nothing.
func TestRepairOfATornLogCommitsOnceAndKeepsIt(t *testing.T) {
	c, dir, ctx := startKfake(t, "a", "b")
	w, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"first", "half"} {
		if err := w.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, topic := range []string{"a", "b"} {
			if err := w.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	waitForFiles(t, dir)
	img := crashImage(t, dir)
	c.Close()
	// Killed after a's marker of "half", before b's and before the
	// coordinator's endtx entry; then a torn batch at the end of b.
	seg := filepath.Join(img, "partitions", "b-0", "0.dat")
	dropLastMarker(t, seg)
	cutPIDsLogBeforeLastEndTx(t, filepath.Join(img, "pids.log"))
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := make([]byte, 40)
	binary.BigEndian.PutUint32(torn[8:12], 200) // a batch of 212 bytes, 40 of them written
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()

	for round := 1; round <= 2; round++ {
		repairOK(t, img)
		c = restartKfake(t, img)
		replays(t, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, "first", "half")
		snap := crashImage(t, img) // and killed again
		c.Close()
		img = snap
	}
	before, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	seg = filepath.Join(img, "partitions", "b-0", "0.dat")
	repairOK(t, img)
	after, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Fatalf("a repair of a repaired log changed b's segment (%d bytes, then %d)", len(before), len(after))
	}
}

// cutPIDsLogBeforeLastEndTx cuts kfake's pids.log before its last endtx
// entry: kfake writes it once every marker of the transaction is written.
func cutPIDsLogBeforeLastEndTx(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ends := endTxns(raw)
	if len(ends) == 0 {
		t.Fatalf("%s has no endtx entry", path)
	}
	if err := os.Truncate(path, int64(ends[len(ends)-1])); err != nil {
		t.Fatal(err)
	}
}

// endTxns returns where each endtx entry of a pids.log starts.
func endTxns(raw []byte) []int {
	var at []int
	for pos := 0; pos+10 <= len(raw); {
		n := int(binary.LittleEndian.Uint32(raw[pos:]))
		if pos+8+n > len(raw) {
			break // torn: being written
		}
		var e struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw[pos+10:pos+8+n], &e) == nil && e.Type == "endtx" {
			at = append(at, pos)
		}
		pos += 8 + n
	}
	return at
}
