package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// The crash loop's checks of overwritten keys and of the node's own death.

func overwriteKey(i int) string { return fmt.Sprintf("ow-%d", i) }

// overwrite writes the overwritten keys in turn, each value one more than
// the key's last, until stop or the first error.
func (r *crashRun) overwrite(stop <-chan struct{}) {
	conn, err := grpc.NewClient(r.p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return
	}
	defer conn.Close()
	dc := sluicev1.NewDataClient(conn)
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		i := n % overwriteKeys
		r.mu.Lock()
		r.over[i].tried++
		v := r.over[i].tried
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := dc.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte(overwriteKey(i)), Value: []byte(strconv.Itoa(v))}}})
		cancel()
		if err != nil {
			return // its outcome may be unknown: tried keeps it
		}
		r.mu.Lock()
		r.over[i].acked = v
		r.mu.Unlock()
	}
}

// verifyOverwritten reads every overwritten key: its value is the last
// acknowledged one, or a later one whose answer the kill took, never an older
// one (a cache or a replay that kept a stale value).
func (r *crashRun) verifyOverwritten(cycle int) {
	conn, err := grpc.NewClient(r.p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close()
	dc := sluicev1.NewDataClient(conn)
	r.mu.Lock()
	over := r.over
	r.mu.Unlock()
	for i, o := range over {
		key := overwriteKey(i)
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			got, err := dc.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)})
			cancel()
			if err != nil {
				if time.Now().After(deadline) {
					r.t.Fatalf("after restart %d: reading %s: %v", cycle, key, err)
				}
				time.Sleep(200 * time.Millisecond)
				continue
			}
			v := 0
			if got.Found {
				if v, err = strconv.Atoi(string(got.Value)); err != nil {
					r.t.Fatalf("after restart %d: %s = %q, not one of the values written", cycle, key, got.Value)
				}
			}
			if v < o.acked || v > o.tried {
				r.t.Fatalf("after restart %d: %s = %d (found %v), want the last acknowledged write, %d, or a later one up to %d: an older value came back",
					cycle, key, v, got.Found, o.acked, o.tried)
			}
			break
		}
	}
}

// noPanicLogged fails the test if the node's log (of every start) has a
// panic: a crash (Go's "panic: ") or a handler's panic that was recovered.
func (r *crashRun) noPanicLogged() {
	b, err := os.ReadFile(r.p.logPath)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "panic: ") || strings.Contains(line, "handler panicked") {
			r.t.Fatalf("the node's log has a panic: %.2000s", line)
		}
	}
}
