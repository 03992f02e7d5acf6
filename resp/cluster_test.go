package resp_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// twoNodes starts n1, whose new cluster has two partitions, and n2 (with
// the data token, if any), and moves partition 2 to n2.
func twoNodes(t *testing.T, token string) (n1, n2 *node.Node) {
	t.Helper()
	cluster := kafkatest.ClusterName(t)
	n1 = startNode(t, node.Config{Cluster: cluster, NodeID: "n1", Partitions: 2, DataToken: token})
	n2 = startNode(t, node.Config{Cluster: cluster, NodeID: "n2", Partitions: 2, DataToken: token})
	move(t, n1, []*node.Node{n1, n2}, 2, n2)
	return n1, n2
}

// move moves partition id to node to and waits until it serves there and
// every node's routing table says so.
func move(t *testing.T, via *node.Node, nodes []*node.Node, id uint32, to *node.Node) {
	t.Helper()
	ctl := controlOf(t, via)
	name := "n1"
	if to != nodes[0] {
		name = "n2"
	}
	ctx := context.Background()
	waitFor(t, 60*time.Second, fmt.Sprintf("partition %d moved to %s", id, name), func() bool {
		_, err := ctl.MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: id, Node: name})
		return err == nil
	})
	waitFor(t, 120*time.Second, fmt.Sprintf("partition %d served by %s", id, name), func() bool {
		for _, n := range nodes {
			if n.Registry().View().Partitions[id].Owner != name {
				return false
			}
		}
		return to.Ready()
	})
}

// A key another node owns is forwarded to it, whichever node a plain Redis
// client talks to: every command, at every level, and MGET over keys of
// both nodes. The nodes have a data token: the forwarding carries it.
func TestAKeyOnAnotherNodeIsForwarded(t *testing.T) {
	n1, n2 := twoNodes(t, "tok")
	ctx := context.Background()
	withToken := func(o *redis.Options) { o.Password = "tok" }
	at1, at2 := newClient(t, n1, withToken), newClient(t, n2, withToken)
	here, there := keyIn(t, n1, 1, "here"), keyIn(t, n1, 2, "there")
	owner2 := grpcData(t, n2, grpc.WithPerRPCCredentials(server.BearerToken("tok")))

	if err := at1.Set(ctx, there, "via n1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if g, err := owner2.Get(ctx, &sluicev1.GetRequest{Key: []byte(there)}); err != nil || string(g.Value) != "via n1" {
		t.Fatalf("the owner's value after a SET forwarded: %v %v", g, err)
	}
	if err := at2.Set(ctx, here, "via n2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rdb       *redis.Client
		key, want string
	}{{at1, there, "via n1"}, {at2, here, "via n2"}, {at1, here, "via n2"}, {at2, there, "via n1"}} {
		if got, err := c.rdb.Get(ctx, c.key).Result(); err != nil || got != c.want {
			t.Fatalf("GET %s: %q %v", c.key, got, err)
		}
	}
	if got, err := at1.MGet(ctx, here, there, "missing", there, here).Result(); err != nil || !slices.Equal(got, []any{"via n2", "via n1", nil, "via n1", "via n2"}) {
		t.Fatalf("MGET over both nodes: %v %v", got, err)
	}
	if got, err := at2.Exists(ctx, here, there, "missing").Result(); err != nil || got != 2 {
		t.Fatalf("EXISTS over both nodes: %d %v", got, err)
	}
	counter := keyIn(t, n1, 2, "counter")
	for i := range 3 {
		if got, err := at1.IncrBy(ctx, counter, 10).Result(); err != nil || got != int64(10*(i+1)) {
			t.Fatalf("INCRBY forwarded: %d %v", got, err)
		}
	}
	if ok, err := at1.SetNX(ctx, there, "again", 0).Result(); err != nil || ok {
		t.Fatalf("SET NX forwarded, of an existing key: %v %v", ok, err)
	}
	if ok, err := at1.SetXX(ctx, there, "replaced", 0).Result(); err != nil || !ok {
		t.Fatalf("SET XX forwarded: %v %v", ok, err)
	}
	if err := at1.Do(ctx, "SET", keyIn(t, n1, 2, "ttl"), "v", "EX", "1").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a forwarded SET EX expires", func() bool { return at1.Get(ctx, keyIn(t, n1, 2, "ttl")).Err() == redis.Nil })

	// SESSION: a connection reads its own forwarded writes, on the other node too.
	conn := at2.Conn()
	defer conn.Close()
	if err := conn.Do(ctx, "SLUICE.CONSISTENCY", "session").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		v := fmt.Sprint("s", i)
		for _, key := range []string{here, there} {
			if err := conn.Set(ctx, key, v, 0).Err(); err != nil {
				t.Fatal(err)
			}
			if got, err := conn.Get(ctx, key).Result(); err != nil || got != v {
				t.Fatalf("SESSION read of its own write of %s: %q %v, want %q", key, got, err, v)
			}
		}
		if got, err := conn.Incr(ctx, counter).Result(); err != nil {
			t.Fatal(err)
		} else if read, _ := conn.Get(ctx, counter).Int64(); read != got {
			t.Fatalf("SESSION read after a forwarded INCR: %d, want %d", read, got)
		}
	}
	if err := conn.Do(ctx, "SLUICE.CONSISTENCY", "eventual").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "an EVENTUAL read forwarded", func() bool {
		got, err := conn.MGet(ctx, here, there).Result()
		return err == nil && slices.Equal(got, []any{"s19", "s19"})
	})

	// DEL over both nodes; SCAN over both.
	if got, err := at1.Del(ctx, here, there, "missing").Result(); err != nil || got != 2 {
		t.Fatalf("DEL over both nodes: %d %v", got, err)
	}
	if got, err := at2.Exists(ctx, here, there).Result(); err != nil || got != 0 {
		t.Fatalf("EXISTS after DEL: %d %v", got, err)
	}
	var want []string
	for i := range 40 {
		key := fmt.Sprintf("scan:%02d", i)
		want = append(want, key)
		if err := at2.Set(ctx, key, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	it := at1.Scan(ctx, 0, "scan:*", 9).Iterator()
	for it.Next(ctx) {
		seen = append(seen, it.Val())
	}
	if err := it.Err(); err != nil || !slices.Equal(seen, want) {
		t.Fatalf("SCAN over both nodes: %v %v", seen, err)
	}
}

// A partition that moves between the nodes while pipelines of INCR and GET
// run through one node's RESP port: every answer is right or a clear error,
// never a stale value (a GET never answers less than an INCR acknowledged
// before it), and the final values account for every acknowledged INCR.
func TestAPartitionMovingMidPipelineNeverAnswersStale(t *testing.T) {
	n1, n2 := twoNodes(t, "")
	nodes := []*node.Node{n1, n2}
	ctx := context.Background()
	var keys []string
	for i := range 4 {
		keys = append(keys, keyIn(t, n1, 1, fmt.Sprint("stay", i)), keyIn(t, n1, 2, fmt.Sprint("moves", i)))
	}
	type state struct {
		acked, tried int64
	}
	var (
		mu     sync.Mutex
		states = map[string]*state{}
		stop   atomic.Bool
		ok     atomic.Int64
		errs   sync.Map // error message → count
	)
	for _, k := range keys {
		states[k] = &state{}
	}
	var wg sync.WaitGroup
	fail := make(chan string, 16)
	report := func(msg string) {
		select {
		case fail <- msg:
		default: // enough to fail the test
		}
	}
	for _, via := range nodes {
		rdb := newClient(t, via)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				pipe := rdb.Pipeline()
				incrs := make([]*redis.IntCmd, len(keys))
				gets := make([]*redis.StringCmd, len(keys))
				// The floor each GET must reach: what was acknowledged before the pipeline.
				floor := make([]int64, len(keys))
				mu.Lock()
				for i, k := range keys {
					floor[i] = states[k].acked
					states[k].tried++
				}
				mu.Unlock()
				for i, k := range keys {
					incrs[i] = pipe.Incr(ctx, k)
					gets[i] = pipe.Get(ctx, k)
				}
				_, _ = pipe.Exec(ctx)
				mu.Lock()
				for i, k := range keys {
					st := states[k]
					if v, err := incrs[i].Result(); err == nil {
						ok.Add(1)
						if v > st.tried || v <= floor[i] {
							report(fmt.Sprintf("INCR %s answered %d: acknowledged %d before, %d tried", k, v, floor[i], st.tried))
						}
						st.acked = max(st.acked, v)
						floor[i] = max(floor[i], v) // its GET comes after it
					} else {
						errs.LoadOrStore(clean(err), 0)
					}
					if s, err := gets[i].Result(); err == nil {
						v, _ := strconv.ParseInt(s, 10, 64)
						if v < floor[i] || v > st.tried {
							report(fmt.Sprintf("GET %s answered %d: stale (%d acknowledged before it) or made up (%d tried)", k, v, floor[i], st.tried))
						}
					} else {
						errs.LoadOrStore(clean(err), 0)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range 4 { // partition 2: to n1, to n2, to n1, to n2
		before := ok.Load()
		waitFor(t, 60*time.Second, "pipelines answered between moves", func() bool { return ok.Load() > before+50 })
		move(t, n1, nodes, 2, nodes[i%2])
	}
	waitFor(t, 60*time.Second, "pipelines answered after the moves", func() bool { return ok.Load() > 200 })
	stop.Store(true)
	wg.Wait()
	close(fail)
	for f := range fail {
		t.Error(f)
	}
	errs.Range(func(k, _ any) bool {
		msg := k.(string)
		t.Logf("an error answered during the moves: %s", msg)
		if !strings.HasPrefix(msg, "TRYAGAIN ") && !strings.HasPrefix(msg, "ERR ") {
			t.Errorf("an unclear error during the moves: %q", msg)
		}
		return true
	})
	final := newClient(t, n2)
	for _, k := range keys {
		v, err := final.Get(ctx, k).Int64()
		st := states[k]
		if err != nil || v < st.acked || v > st.tried {
			t.Errorf("%s = %d (%v) after the moves: %d INCRs acknowledged, %d tried", k, v, err, st.acked, st.tried)
		}
	}
	t.Logf("%d INCRs acknowledged through 4 moves", ok.Load())
}

// clean is an error reply's message, or how the call failed.
func clean(err error) string {
	msg := redisErr(err)
	if i := strings.IndexAny(msg, "0123456789"); i > 40 {
		msg = msg[:i] // one entry per kind of error
	}
	return msg
}
