package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/snapshot"
)

// snapNode is one node with a control token and a snapshot bucket.
type snapNode struct {
	*proc
	dataDir, bucket string
}

func newSnapNode(t *testing.T) *snapNode {
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(clusterToken), 0o600)
	n := &snapNode{dataDir: t.TempDir(), bucket: t.TempDir()}
	n.proc = newProc(t, kafkatest.ClusterName(t), n.dataDir, "--control-token-file", tokenFile, "--snapshot-url", "file://"+n.bucket, "--control-rate", "100")
	return n
}

// snapshotAll snapshots every partition and waits until each is done.
func (n *snapNode) snapshotAll(t *testing.T) {
	t.Helper()
	ctl := controlClient(t, n.control, clusterToken)
	ctx := context.Background()
	var ops []string
	for id := uint32(1); id <= 4; id++ {
		op, err := ctl.Snapshot(ctx, &sluicev1.SnapshotRequest{Partition: id, Path: filepath.Join(n.dataDir, "snapshots")})
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op.Id)
	}
	for _, id := range ops {
		eventually(t, 60*time.Second, func() error {
			op, err := ctl.GetOperation(ctx, &sluicev1.GetOperationRequest{Id: id})
			if err != nil {
				return err
			}
			if op.State == "failed" {
				t.Fatalf("snapshot %s failed: %s", id, op.Error)
			}
			if op.State != "done" {
				return fmt.Errorf("snapshot %s is %s", id, op.State)
			}
			return nil
		})
	}
}

// wipe deletes the node's local state: the next start restores from the
// bucket and the changelog.
func (n *snapNode) wipe(t *testing.T) {
	if err := os.RemoveAll(filepath.Join(n.dataDir, "partitions")); err != nil {
		t.Fatal(err)
	}
}

func dumpKeys(t *testing.T, addr string, keys []string) map[string]string {
	t.Helper()
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := map[string]string{}
	for _, k := range keys {
		v, found, err := c.Get(context.Background(), []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if found {
			out[k] = string(v.Data)
		}
	}
	return out
}

func sameState(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d keys, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: %s = %q, want %q", what, k, got[k], v)
		}
	}
}

// A snapshot taken under concurrent writes, the node wiped, the partitions
// restored from snapshot + changelog: the state equals that of the node that
// never stopped, every acknowledged write is there, and removes made after the
// snapshot stay removed.
func TestSnapshotUnderWritesThenRestore(t *testing.T) {
	n := newSnapNode(t)
	n.start()
	const writers, keysPer = 4, 300
	var keys []string
	for i := 0; i < writers*keysPer; i++ {
		keys = append(keys, fmt.Sprint("s", i))
	}
	model := make([]map[string]string, writers) // last acknowledged op per key, per writer
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		model[w] = map[string]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.New(n.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := keys[w*keysPer+(i*7)%keysPer]
				if i%10 == 9 {
					if _, err := c.Remove(context.Background(), []byte(k)); err != nil {
						t.Error(err)
						return
					}
					delete(model[w], k)
					continue
				}
				v := fmt.Sprint("v", i)
				if _, err := c.Upsert(context.Background(), client.Entry{Key: []byte(k), Value: []byte(v)}); err != nil {
					t.Error(err)
					return
				}
				model[w][k] = v
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	n.snapshotAll(t) // while the writers go on
	time.Sleep(700 * time.Millisecond)
	close(stop)
	wg.Wait()
	acked := map[string]string{}
	for _, m := range model {
		for k, v := range m {
			acked[k] = v
		}
	}
	never := dumpKeys(t, n.addr, keys)
	sameState(t, "the running node against the acknowledged writes", acked, never)

	n.kill()
	n.wipe(t)
	n.start()
	sameState(t, "restored from snapshot + changelog", never, dumpKeys(t, n.addr, keys))
	if log, _ := os.ReadFile(n.logPath); strings.Count(string(log), "restored from snapshot") < 4 {
		t.Fatal("the partitions did not restore from their snapshots")
	}
}

// kill -9 during a snapshot and during replay; a corrupt newest snapshot and a
// half-uploaded one: the next start recovers, the corrupt one is skipped with
// a log line, the half one is never chosen, and the state is whole.
func TestSnapshotCrashesAndCorruption(t *testing.T) {
	n := newSnapNode(t)
	n.start()
	c, err := client.New(n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var keys []string
	write := func(from, to int, tag string) {
		for i := from; i < to; i += 200 {
			var batch []client.Entry
			for j := i; j < min(i+200, to); j++ {
				k := fmt.Sprint("c", j)
				if len(keys) < to {
					keys = append(keys, k)
				}
				batch = append(batch, client.Entry{Key: []byte(k), Value: []byte(tag)})
			}
			if _, err := c.Upsert(ctx, batch...); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 8000, "one")

	// kill -9 in the middle of a snapshot.
	ctl := controlClient(t, n.control, clusterToken)
	for id := uint32(1); id <= 4; id++ {
		if _, err := ctl.Snapshot(ctx, &sluicev1.SnapshotRequest{Partition: id, Path: filepath.Join(n.dataDir, "snapshots")}); err != nil {
			t.Fatal(err)
		}
	}
	n.kill()
	n.start()

	n.snapshotAll(t) // a good one
	write(0, 4000, "two")
	n.snapshotAll(t) // the newest, to be corrupted
	for _, k := range keys[:50] {
		if _, err := c.Remove(ctx, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	want := dumpKeys(t, n.addr, keys)

	// Corrupt partition 1's newest snapshot; leave a newer half-uploaded one.
	names := bucketNames(t, n.bucket, 1)
	clusters, _ := os.ReadDir(n.bucket)
	newest := filepath.Join(n.bucket, clusters[0].Name(), "p1", names[0], snapshot.DataFile)
	raw, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	os.WriteFile(newest, raw, 0o644)
	half := filepath.Join(filepath.Dir(filepath.Dir(newest)), "29991231T000000.000000000Z-e1")
	os.MkdirAll(half, 0o755)
	os.WriteFile(filepath.Join(half, snapshot.DataFile), raw[:len(raw)/3], 0o644)

	n.kill()
	n.wipe(t)
	// kill -9 during replay: right after the process starts restoring.
	n.startNoWait()
	time.Sleep(400 * time.Millisecond)
	n.kill()
	n.start()
	sameState(t, "after crashes and a corrupt snapshot", want, dumpKeys(t, n.addr, keys))
	log, _ := os.ReadFile(n.logPath)
	if !strings.Contains(string(log), "snapshot unusable") || !strings.Contains(string(log), names[0]) {
		t.Fatal("the corrupt snapshot was not reported as skipped")
	}
	if strings.Contains(string(log), `"snapshot":"29991231T000000.000000000Z-e1","keys"`) {
		t.Fatal("a half-uploaded snapshot was chosen")
	}
}

// bucketNames lists partition's snapshot folder names in the bucket, newest first.
func bucketNames(t *testing.T, bucket string, partition int) []string {
	t.Helper()
	clusters, err := os.ReadDir(bucket)
	if err != nil || len(clusters) != 1 {
		t.Fatalf("bucket %s: %v %v", bucket, clusters, err)
	}
	dir := filepath.Join(bucket, clusters[0].Name(), fmt.Sprint("p", partition))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].IsDir() {
			names = append(names, entries[i].Name())
		}
	}
	return names
}
