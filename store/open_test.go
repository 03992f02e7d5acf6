package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicedb/sluice/kv"
)

// A process killed just after badger created its next memtable file, before
// it sized it, leaves an empty .mem file; badger's Open then fails with
// z.NewFile (dgraph-io/badger#2207) — every time, so the partition never
// opened again. OpenBadger opens such a directory.
func TestOpenBadgerAfterACrashLeftAnEmptyMemtable(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenBadger(BadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(kv.Write{Changes: []kv.Change{{Key: []byte("k"), Value: []byte("v"), Version: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00009.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = OpenBadger(BadgerOptions(dir))
	if err != nil {
		t.Fatalf("opening after a crash left an empty memtable: %v", err)
	}
	defer st.Close()
	if r, err := st.Get([]byte("k")); err != nil || !r.Found || string(r.Value.Data) != "v" {
		t.Fatalf("k = %+v %v after reopening", r, err)
	}
}
