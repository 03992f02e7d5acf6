package snapshot

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Confine takes relative paths under the root, accepts absolute ones inside
// it and refuses every way out: absolute paths elsewhere, .., symlinks.
func TestConfine(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "snapshots")
	outside := filepath.Join(base, "elsewhere")
	for _, d := range []string{filepath.Join(root, "inner"), outside} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Symlinks: one that leaves the root, one that stays inside it, one dangling.
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(outside, filepath.Join(root, "escape")))
	must(os.Symlink(filepath.Join(root, "inner"), filepath.Join(root, "alias")))
	must(os.Symlink("../elsewhere", filepath.Join(root, "relescape")))
	must(os.Symlink(filepath.Join(base, "missing"), filepath.Join(root, "dangling")))
	// A root reached through a symlink still confines to its target.
	must(os.Symlink(root, filepath.Join(base, "rootlink")))

	cases := []struct {
		root, path string
		want       string // the resolved folder; "" when refused
	}{
		{root, "", root},
		{root, ".", root},
		{root, "nightly", filepath.Join(root, "nightly")},
		{root, "a/b/c", filepath.Join(root, "a/b/c")},
		{root, "a/../b", filepath.Join(root, "b")},
		{root, "inner", filepath.Join(root, "inner")},
		{root, filepath.Join(root, "abs"), filepath.Join(root, "abs")},
		{root, "alias/x", filepath.Join(root, "inner/x")},
		{filepath.Join(base, "rootlink"), "x", filepath.Join(root, "x")},
		{filepath.Join(base, "rootlink"), filepath.Join(root, "x"), filepath.Join(root, "x")},
		{root, "..", ""},
		{root, "../elsewhere", ""},
		{root, "a/../../elsewhere", ""},
		{root, "/etc", ""},
		{root, outside, ""},
		{root, root + "-sibling", ""},
		{root, filepath.Join(root, "..", "elsewhere"), ""},
		{root, "escape", ""},
		{root, "escape/deeper/still", ""},
		{root, "relescape/x", ""},
		{root, "dangling/x", ""},
	}
	for _, tc := range cases {
		got, err := Confine(tc.root, tc.path)
		if tc.want == "" {
			if !errors.Is(err, ErrOutsideRoot) || !strings.Contains(err.Error(), tc.root) {
				t.Errorf("Confine(%q, %q) = %q, %v; want ErrOutsideRoot naming the root", tc.root, tc.path, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Confine(%q, %q) = %q, %v; want %q", tc.root, tc.path, got, err, tc.want)
		}
	}
	// A missing root is made, for the node's user only.
	fresh := filepath.Join(base, "new", "root")
	if _, err := Confine(fresh, "x"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != DirMode {
		t.Fatalf("the root was made as %v, %v; want %v", fi.Mode(), err, DirMode)
	}
}

// What a snapshot writes and what a restore downloads is readable by the
// node's user only: files 0600, folders 0700; a file:// bucket makes 0700
// folders too.
func TestSnapshotModes(t *testing.T) {
	ctx := context.Background()
	st := filled(t, 10, "m")
	parent := filepath.Join(t.TempDir(), "nightly", "p1")
	m, dir, err := Write(ctx, st, parent, Manifest{Cluster: "c", Partition: 1, Range: rng4, Slots: 16, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkModes(t, filepath.Dir(parent))

	bdir := t.TempDir()
	b, err := OpenBucket(ctx, "file://"+bdir, "c", BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Upload(ctx, dir, m); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(bdir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && path != bdir {
			if fi, _ := d.Info(); fi.Mode().Perm() != DirMode {
				t.Errorf("bucket folder %s is %v, want %v", path, fi.Mode().Perm(), DirMode)
			}
		}
		return nil
	})
	work := filepath.Join(t.TempDir(), "restore")
	if err := b.download(ctx, 1, m.Name(), work); err != nil {
		t.Fatal(err)
	}
	checkModes(t, work)
}

// checkModes walks dir: every folder 0700, every file 0600.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := FileMode
		if d.IsDir() {
			want = DirMode
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s is %v, want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil || files < 2 {
		t.Fatalf("walking %s: %v (%d files)", dir, err, files)
	}
}
