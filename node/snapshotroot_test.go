package node

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// Snapshot paths are confined to the snapshot root: a path outside it is
// refused with INVALID_ARGUMENT naming the root, a relative one is written
// under it, with files 0600 and folders 0700 (issue 14 §6).
func TestSnapshotsStayUnderTheRoot(t *testing.T) {
	dataDir := t.TempDir()
	outside := t.TempDir()
	n := startNode(t, Config{Partitions: 1, DataDir: dataDir, ControlRate: 1000})
	root := filepath.Join(dataDir, "snapshots")
	ctx := context.Background()
	if _, err := n.data.Upsert(ctx, upsert("k", "v")); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(n.ControlAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(server.BearerToken("test-token")))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	control := sluicev1.NewControlClient(cc)
	// A symlink inside the root that leads out of it.
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{outside, "/etc", "../escape", "ok/../../escape", filepath.Join(root, "..", "x"), "out", "out/x"} {
		_, err := control.Snapshot(ctx, &sluicev1.SnapshotRequest{Partition: 1, Path: path})
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), root) {
			t.Errorf("snapshot into %q: %v %q, want INVALID_ARGUMENT naming %s", path, st.Code(), st.Message(), root)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("a refused snapshot wrote outside the root: %v", entries)
	}

	op, err := control.Snapshot(ctx, &sluicev1.SnapshotRequest{Partition: 1, Path: "nightly"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the snapshot ends", func() bool {
		o, _ := n.Operation(op.Id)
		if o.State == "failed" {
			t.Fatal(o.Error)
		}
		return o.State == "done"
	})
	o, _ := n.Operation(op.Id)
	if !strings.Contains(o.Result, filepath.Join(root, "nightly", "p1")) {
		t.Fatalf("snapshot written to %s, want under %s", o.Result, filepath.Join(root, "nightly"))
	}
	files := 0
	err = filepath.WalkDir(filepath.Join(root, "nightly"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s is %v, want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil || files != 2 {
		t.Fatalf("walking the root: %v (%d files, want data and manifest)", err, files)
	}
}
