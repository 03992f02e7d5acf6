package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/client"
)

// --wal disk and none: a planned move hands the partition over through the
// bucket (the old owner stops intake and uploads a final snapshot, the new
// one waits for it and restores it). Writes go on through three moves;
// every acknowledged write is on the last owner, applied once.
func TestPlannedMovesHandOffThroughTheBucket(t *testing.T) {
	for _, mode := range [][]string{{"--wal", "disk"}, {"--wal", "none"}} {
		t.Run(strings.Join(mode, " "), func(t *testing.T) {
			c := startCluster(t, append(mode, "--snapshot-url", "file://"+t.TempDir())...)
			ctx := context.Background()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			acked := make(chan string, 100000)
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl, err := client.New(c.addrs()...)
					if err != nil {
						t.Error(err)
						return
					}
					defer cl.Close()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						key := fmt.Sprintf("w%d-%d", w, i)
						callCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
						_, err := cl.Upsert(callCtx, client.Entry{Key: []byte(key), Value: []byte(key)})
						cancel()
						if err != nil {
							t.Errorf("writer %d saw an error, not a retry: %v", w, err)
							return
						}
						acked <- key
					}
				}()
			}
			for _, hop := range []string{"n2", "n3", "n1"} {
				time.Sleep(500 * time.Millisecond)
				c.move(1, hop)
			}
			time.Sleep(300 * time.Millisecond)
			close(stop)
			wg.Wait()
			close(acked)
			r, err := client.New(c.addrs()...)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			n := 0
			for key := range acked {
				n++
				v, found, err := r.Get(ctx, []byte(key))
				if err != nil || !found || string(v.Data) != key {
					t.Fatalf("acknowledged %s: %q %v %v", key, v.Data, found, err)
				}
				if v.Version != 1 {
					t.Fatalf("%s written once has version %d: applied twice", key, v.Version)
				}
			}
			for _, id := range []string{"n1", "n2", "n3"} {
				if log, _ := os.ReadFile(c.nodes[id].logPath); id != "n1" && !strings.Contains(string(log), "final snapshot uploaded") {
					t.Errorf("%s handed partition 1 on without a final snapshot", id)
				}
			}
			t.Logf("%d writes acknowledged across 3 moves of partition 1, all present once", n)
		})
	}
}
