package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/snapshot"
	"github.com/sluicedb/sluice/store"
)

// Storage modes against real processes: kill -9, restarts on the node's own
// disk, restores on an empty one. (kafka+badger has its own tests:
// crash_test.go, snapshot_test.go.)

// stop stops the node gracefully (SIGTERM) and waits for it to exit.
func (p *proc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		p.t.Fatal("sluice did not stop within 60s of SIGTERM")
	}
}

// modeNode is a node of one storage mode with a token and a snapshot bucket.
func modeNode(t *testing.T, dataDir, bucket string, mode ...string) *proc {
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(clusterToken), 0o600)
	args := append([]string{"--control-token-file", tokenFile, "--snapshot-url", "file://" + bucket, "--control-rate", "100"}, mode...)
	return newProc(t, kafkatest.ClusterName(t), dataDir, args...)
}

// --wal disk, --wal disk --store cached, --store cached: kill -9 under load
// loses nothing acknowledged and applies no batch by half.
func TestModesKill9LoseNothingAcknowledged(t *testing.T) {
	for _, mode := range [][]string{{"--wal", "disk"}, {"--wal", "disk", "--store", "cached"}, {"--store", "cached"}} {
		t.Run(strings.Join(mode, " "), func(t *testing.T) {
			if strings.Contains(strings.Join(mode, " "), "cached") {
				mode = append(mode, "--cache-dir", t.TempDir())
			}
			kill9Rounds(t, modeNode(t, t.TempDir(), t.TempDir(), mode...), 3)
		})
	}
}

// bigBatch is one Upsert of n keys of partition 1 ([0,4) of 16 slots), far
// past one badger transaction: --wal disk writes it through an intent.
func bigBatchOfPartition1(id, n int) *batch {
	b := &batch{id: fmt.Sprint("big", id), value: []byte{byte('a' + id%26)}}
	for i := 0; len(b.keys) < n; i++ {
		k := fmt.Appendf(nil, "b%d-%d", id, i)
		if keyspace.Slot(k, keyspace.DefaultSlots) < 4 {
			b.keys = append(b.keys, k)
		}
	}
	return b
}

// A node of --wal disk killed while it commits groups far past one badger
// transaction (three writers keep partition 1's flusher busy with them):
// after the restart each such batch is whole or absent, and whole if it was
// acknowledged.
func TestDiskModeKilledDuringABigGroupCommit(t *testing.T) {
	p := modeNode(t, t.TempDir(), t.TempDir(), "--wal", "disk")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var (
		mu  sync.Mutex
		all []*batch
	)
	for round := range 3 {
		p.start()
		conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(8<<20)))
		if err != nil {
			t.Fatal(err)
		}
		dc := sluicev1.NewDataClient(conn)
		// Kill at a random moment after the first batch was acknowledged.
		var once sync.Once
		firstAck, killed := make(chan struct{}), make(chan struct{})
		go func() {
			select {
			case <-firstAck:
			case <-time.After(90 * time.Second):
			}
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
			p.kill()
			close(killed)
		}()
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					b := bigBatchOfPartition1(round*10000+w*1000+i, 30_000)
					err := b.send(dc, 60*time.Second)
					mu.Lock()
					all = append(all, b)
					mu.Unlock()
					if err != nil {
						return
					}
					once.Do(func() { close(firstAck) })
				}
			}()
		}
		wg.Wait()
		<-killed
		conn.Close()
	}
	p.start()
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dc := sluicev1.NewDataClient(conn)
	acked, whole := 0, 0
	for _, b := range all {
		// A batch cut short leaves a prefix of its keys: its first and last
		// keys tell whole from half.
		sample := append(append([][]byte{}, b.keys[:100]...), b.keys[len(b.keys)-100:]...)
		present := 0
		for _, k := range sample {
			got, err := dc.Get(context.Background(), &sluicev1.GetRequest{Key: k})
			if err != nil {
				t.Fatal(err)
			}
			if got.Found {
				present++
			}
		}
		if b.acked {
			acked++
		} else if present == len(sample) {
			whole++
		}
		switch {
		case b.acked && present != len(sample):
			t.Errorf("acknowledged batch %s lost %d of %d sampled keys", b.id, len(sample)-present, len(sample))
		case present != 0 && present != len(sample):
			t.Errorf("batch %s is half-applied: %d of %d sampled keys", b.id, present, len(sample))
		}
	}
	if acked == 0 {
		t.Fatal("no big batch was acknowledged")
	}
	t.Logf("%d big batches of 30,000 keys tried, %d acknowledged, %d unacknowledged but whole (killed after their commit)", len(all), acked, whole)
}

// writeKeys writes n keys (value = key + tag) and returns them.
func writeKeys(t *testing.T, addr, prefix, tag string, n int) []string {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dc := sluicev1.NewDataClient(conn)
	var keys []string
	for i := 0; i < n; i += 50 {
		req := &sluicev1.UpsertRequest{}
		for j := i; j < min(n, i+50); j++ {
			k := fmt.Sprintf("%s%d", prefix, j)
			keys = append(keys, k)
			req.Entries = append(req.Entries, &sluicev1.Entry{Key: []byte(k), Value: []byte(k + tag)})
		}
		if _, err := dc.Upsert(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func want(keys []string, tag string) map[string]string {
	m := map[string]string{}
	for _, k := range keys {
		m[k] = k + tag
	}
	return m
}

// A restart on the node's own disk keeps everything; a start on an empty
// disk restores the newest snapshot in the bucket: exactly it with --wal
// disk (what came after it was on the lost disk), it plus the changelog with
// --wal kafka. With --store cached, a cache kept from before (ahead of the
// restored state) is dropped, never served.
func TestRestartAndRestoreOnAnEmptyDisk(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode []string
		// afterWipe is the tag of the values a start on an empty disk finds:
		// the snapshot's (-1) or the newest (-2).
		afterWipe string
	}{
		{"disk", []string{"--wal", "disk"}, "-1"},
		{"disk cached", []string{"--wal", "disk", "--store", "cached"}, "-1"},
		{"kafka cached", []string{"--store", "cached"}, "-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, bucket := t.TempDir(), t.TempDir()
			mode := tc.mode
			if strings.Contains(tc.name, "cached") {
				mode = append(mode, "--cache-dir", t.TempDir())
			}
			p := modeNode(t, dir, bucket, mode...)
			p.start()
			a := writeKeys(t, p.addr, "a", "-1", 300)
			p.stop()
			p.start()
			sameState(t, "restarted on its own disk", want(a, "-1"), dumpKeys(t, p.addr, a))
			(&snapNode{proc: p, dataDir: dir, bucket: bucket}).snapshotAll(t)
			b := writeKeys(t, p.addr, "a", "-2", 300) // the same keys, after the snapshot
			sameState(t, "after more writes", want(b, "-2"), dumpKeys(t, p.addr, b))
			p.stop()
			os.RemoveAll(filepath.Join(dir, "partitions")) // the disk is lost
			p.start()
			sameState(t, "restored on an empty disk", want(a, tc.afterWipe), dumpKeys(t, p.addr, a))
		})
	}
}

// --wal none: a graceful restart keeps everything (a final backup at
// shutdown); kill -9 keeps exactly the state of the newest backups; a start
// on an empty data directory restores the same.
func TestNoneModeKeepsExactlyTheLastBackup(t *testing.T) {
	dir, bucket := t.TempDir(), t.TempDir()
	p := modeNode(t, dir, bucket, "--wal", "none", "--backup-every", "300ms")
	p.start()
	a := writeKeys(t, p.addr, "n", "-1", 200)
	p.stop()
	p.start()
	sameState(t, "after a graceful restart", want(a, "-1"), dumpKeys(t, p.addr, a))

	// Writes under way, then kill -9: the node comes back with exactly what
	// its newest backups hold, read from the bucket here while it is down.
	stopLoad := make(chan struct{})
	done := make(chan []*batch)
	go func() { done <- load(p.addr, 4, stopLoad) }()
	time.Sleep(1500 * time.Millisecond)
	p.kill()
	close(stopLoad)
	tried := <-done
	var keys []string
	for _, b := range tried {
		for _, k := range b.keys {
			keys = append(keys, string(k))
		}
	}
	keys = append(keys, a...)
	backedUp := newestBackups(t, bucket, p)
	expected := map[string]string{}
	for _, k := range keys {
		if r, err := backedUp.Get([]byte(k)); err == nil && r.Found {
			expected[k] = string(r.Value.Data)
		}
	}
	if len(expected) <= len(a) {
		t.Fatalf("the backups hold %d keys: none of the load's writes was backed up in 1.5 s", len(expected))
	}
	p.start()
	sameState(t, "after kill -9: the newest backups' state", expected, dumpKeys(t, p.addr, keys))
	if log, _ := os.ReadFile(p.logPath); !strings.Contains(string(log), "a crash loses the writes since the last backup") {
		t.Fatal("the node did not say at start what a crash loses")
	}

	p.stop()
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o755)
	p.start()
	sameState(t, "on an empty data directory", expected, dumpKeys(t, p.addr, keys))
}

// newestBackups loads the newest valid backup of each of the 4 partitions
// in bucket into one memory store.
func newestBackups(t *testing.T, bucket string, p *proc) *store.Memory {
	t.Helper()
	cluster := ""
	for i, a := range p.args {
		if a == "--cluster" {
			cluster = p.args[i+1]
		}
	}
	b, err := snapshot.OpenBucket(context.Background(), "file://"+bucket, cluster, snapshot.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	all := store.NewMemory() // the partitions' key sets are disjoint: each loads into the same store
	for i, r := range keyspace.Split(keyspace.DefaultSlots, 4) {
		want := snapshot.Want{Partition: uint32(i + 1), Range: r, Slots: keyspace.DefaultSlots}
		if _, ok, err := b.Restore(context.Background(), want, all, t.TempDir(), zerolog.Nop()); err != nil || !ok {
			t.Fatalf("partition %d: no backup in the bucket (%v)", i+1, err)
		}
	}
	return all
}
