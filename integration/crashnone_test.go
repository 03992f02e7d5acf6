package integration

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sluicedb/sluice/client"
)

// --wal none in the crash loop (issue 23.11), its documented promise: a
// kill -9 keeps exactly the state of the newest backups, a graceful restart
// loses nothing. 20 stops, every fifth one graceful, under gRPC writers and
// the client processes; after each start the node's state of every key the
// writers ever sent is the newest backups' (read from the bucket while the
// node is down), and after a graceful stop those backups hold every write
// acknowledged since the start (a kill before may have lost older ones).
func TestCrashLoopNone(t *testing.T) {
	bucket := t.TempDir()
	p := modeNode(t, t.TempDir(), bucket, "--wal", "none", "--backup-every", "300ms", "--http-addr", freeAddr(t))
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SLUICE_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (SLUICE_SEED=%d replays the schedule)", seed, seed)
	r := &crashRun{t: t, p: p, rng: rand.New(rand.NewPCG(seed, 12))}
	clients := startClients(t, p)
	began := time.Now()
	want := map[string]string{} // the state of the writers' keys at the next start
	kills, graceful := 0, 0
	for cycle := 0; cycle <= crashCycles; cycle++ {
		if time.Since(began) > crashLoopLimit {
			t.Fatalf("the crash loop ran out of time after %d cycles", cycle)
		}
		p.startNoWait()
		waitStorm := func() {}
		if cycle%3 == 1 { // client processes queued up for its first moment of serving
			var err error
			if waitStorm, err = clients.stormAtStart(); err != nil {
				t.Fatalf("cycle %d: %v", cycle, err)
			}
		}
		if err := p.waitServingWithin(90 * time.Second); err != nil {
			t.Fatalf("cycle %d: stuck restart: %v\n/healthz: %s", cycle, err, r.healthz())
		}
		waitStorm()
		keys := r.keys()
		sameState(t, "cycle "+strconv.Itoa(cycle)+": after the restart, the newest backups' state", want, dumpMany(t, p.addr, keys))
		if cycle == crashCycles {
			break
		}
		r.mu.Lock()
		ackedBefore, overBefore := len(r.acked), r.over
		r.mu.Unlock()
		d := time.Duration(500+r.rng.IntN(1500)) * time.Millisecond
		if cycle%5 == 4 {
			graceful++
			r.loadThen(cycle, d, p.stop)
		} else {
			kills++
			r.loadAndKill(cycle, d)
		}
		if t.Failed() {
			t.FailNow()
		}
		keys = r.keys()
		backedUp := newestBackups(t, bucket, p)
		want = map[string]string{}
		for _, k := range keys {
			if v, err := backedUp.Get([]byte(k)); err != nil {
				t.Fatal(err)
			} else if v.Found {
				want[k] = string(v.Value.Data)
			}
		}
		if cycle%5 == 4 { // a graceful stop: everything acknowledged since the start is backed up
			r.mu.Lock()
			for _, a := range r.acked[ackedBefore:] {
				if want[a.key] != a.value {
					t.Fatalf("cycle %d: after a graceful stop the backups have %s = %q, want the acknowledged %q", cycle, a.key, want[a.key], a.value)
				}
			}
			for i, o := range r.over {
				if o.acked == overBefore[i].acked {
					continue // not acknowledged since the start
				}
				if v, _ := strconv.Atoi(want[overwriteKey(i)]); v < o.acked {
					t.Fatalf("cycle %d: after a graceful stop the backups have %s = %d, want the acknowledged %d or later", cycle, overwriteKey(i), v, o.acked)
				}
			}
			r.mu.Unlock()
		}
	}
	clients.close()
	r.noPanicLogged()
	t.Logf("%d kill -9 and %d graceful stops in %v: %d keys sent, %d acknowledged; after every start exactly the newest backups' state",
		kills, graceful, time.Since(began).Round(time.Second), len(r.tried), len(r.acked))
}

// keys are every key the writers sent.
func (r *crashRun) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := slices.Clone(r.tried)
	for i := range r.over {
		keys = append(keys, overwriteKey(i))
	}
	return keys
}

// dumpMany reads keys with GetMany: key → value of those found.
func dumpMany(t *testing.T, addr string, keys []string) map[string]string {
	t.Helper()
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bs := make([][]byte, len(keys))
	for i, k := range keys {
		bs[i] = []byte(k)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reads, err := c.GetMany(ctx, bs, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, rd := range reads {
		if rd.Found {
			out[keys[i]] = string(rd.Data)
		}
	}
	return out
}
