package resp_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Every command, through go-redis over RESP3 and RESP2, checked against
// what the data plane holds (its gRPC port) where it writes.
func TestEveryCommand(t *testing.T) {
	n := startNode(t, node.Config{})
	data := grpcData(t, n)
	ctx := context.Background()
	for _, proto := range []int{3, 2} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			rdb := newClient(t, n, func(o *redis.Options) { o.Protocol = proto })
			p := fmt.Sprintf("p%d:", proto)
			k := func(s string) string { return p + s }

			if got, err := rdb.Ping(ctx).Result(); err != nil || got != "PONG" {
				t.Fatalf("PING: %q %v", got, err)
			}
			if got, err := rdb.Echo(ctx, "hi there").Result(); err != nil || got != "hi there" {
				t.Fatalf("ECHO: %q %v", got, err)
			}
			if err := rdb.Set(ctx, k("a"), "1", 0).Err(); err != nil {
				t.Fatal(err)
			}
			g, err := data.Get(ctx, &sluicev1.GetRequest{Key: []byte(k("a"))})
			if err != nil || string(g.Value) != "1" {
				t.Fatalf("SET is not in the data plane: %v %v", g, err)
			}
			if got, err := rdb.Get(ctx, k("a")).Result(); err != nil || got != "1" {
				t.Fatalf("GET: %q %v", got, err)
			}
			if err := rdb.Get(ctx, k("missing")).Err(); err != redis.Nil {
				t.Fatalf("GET of a missing key: %v, want nil", err)
			}
			if got, err := rdb.Incr(ctx, k("a")).Result(); err != nil || got != 2 {
				t.Fatalf("INCR: %d %v", got, err)
			}
			if got, err := rdb.IncrBy(ctx, k("a"), 40).Result(); err != nil || got != 42 {
				t.Fatalf("INCRBY: %d %v", got, err)
			}
			if got, err := rdb.Decr(ctx, k("a")).Result(); err != nil || got != 41 {
				t.Fatalf("DECR: %d %v", got, err)
			}
			if got, err := rdb.DecrBy(ctx, k("a"), 50).Result(); err != nil || got != -9 {
				t.Fatalf("DECRBY: %d %v", got, err)
			}
			if got, err := rdb.Incr(ctx, k("counter")).Result(); err != nil || got != 1 {
				t.Fatalf("INCR of a missing key: %d %v", got, err)
			}
			for _, v := range []string{"+5", "012", "-0", " 5"} { // stored values Redis's INCR refuses
				if err := rdb.Set(ctx, k("loose"), v, 0).Err(); err != nil {
					t.Fatal(err)
				}
				if got, err := rdb.Incr(ctx, k("loose")).Result(); err == nil || !strings.HasPrefix(err.Error(), "ERR value is not an integer or out of range") {
					t.Fatalf("INCR of the stored value %q: %d %v, want ERR value is not an integer or out of range", v, got, err)
				}
			}
			if err := rdb.Set(ctx, k("b"), "bee", 0).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := rdb.MGet(ctx, k("a"), k("missing"), k("b"), k("a")).Result()
			if err != nil || !slices.Equal(got, []any{"-9", nil, "bee", "-9"}) {
				t.Fatalf("MGET: %v %v", got, err)
			}
			if n, err := rdb.Exists(ctx, k("a"), k("missing"), k("b"), k("a")).Result(); err != nil || n != 3 {
				t.Fatalf("EXISTS: %d %v, want 3 (a key named twice counts twice)", n, err)
			}
			if n, err := rdb.Del(ctx, k("a"), k("missing"), k("b")).Result(); err != nil || n != 2 {
				t.Fatalf("DEL: %d %v, want 2", n, err)
			}
			if g, _ := data.Get(ctx, &sluicev1.GetRequest{Key: []byte(k("a"))}); g.GetFound() {
				t.Fatal("DEL left the key in the data plane")
			}
			if n, err := rdb.Exists(ctx, k("a"), k("b")).Result(); err != nil || n != 0 {
				t.Fatalf("EXISTS after DEL: %d %v", n, err)
			}

			// NX and XX.
			if ok, err := rdb.SetNX(ctx, k("nx"), "first", 0).Result(); err != nil || !ok {
				t.Fatalf("SET NX of a new key: %v %v", ok, err)
			}
			if ok, err := rdb.SetNX(ctx, k("nx"), "second", 0).Result(); err != nil || ok {
				t.Fatalf("SET NX of an existing key: %v %v, want not set", ok, err)
			}
			if ok, err := rdb.SetXX(ctx, k("xx"), "v", 0).Result(); err != nil || ok {
				t.Fatalf("SET XX of a missing key: %v %v, want not set", ok, err)
			}
			if err := rdb.Get(ctx, k("xx")).Err(); err != redis.Nil {
				t.Fatalf("SET XX of a missing key wrote it: %v", err)
			}
			if ok, err := rdb.SetXX(ctx, k("nx"), "third", 0).Result(); err != nil || !ok {
				t.Fatalf("SET XX of an existing key: %v %v", ok, err)
			}
			if got, _ := rdb.Get(ctx, k("nx")).Result(); got != "third" {
				t.Fatalf("after NX, NX, XX: %q, want third", got)
			}
			if err := rdb.Do(ctx, "SET", k("nx"), "v", "NX", "XX").Err(); redisErr(err) != "ERR syntax error" {
				t.Fatalf("SET NX XX: %v", err)
			}

			// EX and PX set sluice's TTL (whole seconds).
			if err := rdb.Set(ctx, k("ex"), "v", time.Second).Err(); err != nil { // go-redis sends EX 1
				t.Fatal(err)
			}
			if err := rdb.Do(ctx, "SET", k("px"), "v", "PX", "2000").Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Do(ctx, "SET", k("exnx"), "v", "EX", "1", "NX").Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Set(ctx, k("keep"), "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{k("ex"), k("px"), k("exnx")} {
				waitFor(t, 30*time.Second, key+" expires", func() bool { return rdb.Get(ctx, key).Err() == redis.Nil })
			}
			if got, err := rdb.Get(ctx, k("keep")).Result(); err != nil || got != "v" {
				t.Fatalf("a key without TTL: %q %v", got, err)
			}
			if err := rdb.Do(ctx, "SET", k("px2"), "v", "PX", "1500").Err(); !strings.Contains(redisErr(err), "whole seconds") {
				t.Fatalf("SET PX 1500: %v, want refused (sluice's TTL is whole seconds)", err)
			}
			if err := rdb.Get(ctx, k("px2")).Err(); err != redis.Nil {
				t.Fatalf("a refused SET wrote: %v", err)
			}

			// SCAN MATCH prefix* COUNT n, through go-redis's iterator
			// (pooled connections: a cursor resumes on any of them).
			var want []string
			for i := range 25 {
				key := fmt.Sprintf("%sscan:%02d", p, i)
				want = append(want, key)
				if err := rdb.Set(ctx, key, "x", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			var seen []string
			it := rdb.Scan(ctx, 0, p+"scan:*", 7).Iterator()
			for it.Next(ctx) {
				seen = append(seen, it.Val())
			}
			if err := it.Err(); err != nil || !slices.Equal(seen, want) {
				t.Fatalf("SCAN MATCH %sscan:* COUNT 7: %v %v, want the 25 keys in order", p, seen, err)
			}
			keys, cursor, err := rdb.Scan(ctx, 0, p+"scan:*", 10).Result()
			if err != nil || len(keys) != 10 || cursor == 0 {
				t.Fatalf("one SCAN page of 10: %v cursor %d %v", keys, cursor, err)
			}
			if _, _, err := rdb.Scan(ctx, 0, p+"scan:*:x", 10).Result(); !strings.Contains(redisErr(err), "prefix") {
				t.Fatalf("SCAN with a glob that is not a prefix: %v", err)
			}
			if _, _, err := rdb.Scan(ctx, 12345, "*", 10).Result(); !strings.Contains(redisErr(err), "invalid cursor") {
				t.Fatalf("SCAN with an unknown cursor: %v", err)
			}
			if _, _, err := rdb.Scan(ctx, cursor, p+"other:*", 10).Result(); !strings.Contains(redisErr(err), "page token") {
				t.Fatalf("a cursor resumed with another MATCH: %v, want refused", err)
			}
			all, _, err := rdb.Scan(ctx, 0, "*", 1000).Result()
			if err != nil || !slices.IsSorted(all) || !slices.Contains(all, want[0]) {
				t.Fatalf("SCAN 0 MATCH * COUNT 1000: %v %v", all, err)
			}

			// CLIENT, SELECT, the consistency level.
			// go-redis pools connections: ask on one.
			conn := rdb.Conn()
			defer conn.Close()
			if got, err := conn.ClientGetName(ctx).Result(); err != redis.Nil || got != "" {
				t.Fatalf("CLIENT GETNAME before SETNAME: %q %v", got, err)
			}
			if err := conn.ClientSetName(ctx, "me").Err(); err != nil {
				t.Fatal(err)
			}
			if got, err := conn.ClientGetName(ctx).Result(); err != nil || got != "me" {
				t.Fatalf("CLIENT GETNAME: %q %v", got, err)
			}
			if err := conn.ClientSetName(ctx, "has space").Err(); !strings.Contains(redisErr(err), "cannot contain spaces") {
				t.Fatalf("CLIENT SETNAME with a space: %v", err)
			}
			if id, err := conn.ClientID(ctx).Result(); err != nil || id <= 0 {
				t.Fatalf("CLIENT ID: %d %v", id, err)
			}
			if err := conn.Select(ctx, 0).Err(); err != nil {
				t.Fatalf("SELECT 0: %v", err)
			}
			if err := conn.Select(ctx, 1).Err(); !strings.Contains(redisErr(err), "out of range") {
				t.Fatalf("SELECT 1: %v", err)
			}
			if got, err := conn.Do(ctx, "SLUICE.CONSISTENCY").Text(); err != nil || got != "linearizable" {
				t.Fatalf("the default level: %q %v", got, err)
			}
			for _, level := range []string{"session", "eventual", "linearizable"} {
				if err := conn.Do(ctx, "SLUICE.CONSISTENCY", level).Err(); err != nil {
					t.Fatal(err)
				}
				if got, _ := conn.Do(ctx, "sluice.consistency").Text(); got != level {
					t.Fatalf("level %q after setting %q", got, level)
				}
				if err := conn.Set(ctx, k("level"), level, 0).Err(); err != nil {
					t.Fatal(err)
				}
				// LINEARIZABLE and SESSION read this connection's writes;
				// EVENTUAL may be behind, for a moment.
				if level == "eventual" {
					waitFor(t, 30*time.Second, "an EVENTUAL read of the write", func() bool {
						got, err := conn.MGet(ctx, k("level")).Result()
						return err == nil && got[0] == level && conn.Get(ctx, k("level")).Val() == level
					})
					continue
				}
				if got, err := conn.Get(ctx, k("level")).Result(); err != nil || got != level {
					t.Fatalf("GET at %s: %q %v", level, got, err)
				}
				if got, err := conn.MGet(ctx, k("level")).Result(); err != nil || got[0] != level {
					t.Fatalf("MGET at %s: %v %v", level, got, err)
				}
			}
			if err := conn.Do(ctx, "SLUICE.CONSISTENCY", "strong").Err(); !strings.Contains(redisErr(err), "unknown consistency level") {
				t.Fatalf("an unknown level: %v", err)
			}

			// Commands sluice does not serve.
			if err := rdb.Do(ctx, "HSET", "h", "f", "v").Err(); redisErr(err) != "ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v' " {
				t.Fatalf("an unknown command: %q", redisErr(err))
			}
			if err := rdb.Do(ctx, "CLUSTER", "SLOTS").Err(); !strings.Contains(redisErr(err), "no CLUSTER commands") {
				t.Fatalf("CLUSTER SLOTS: %v", err)
			}
		})
	}
}

// HELLO and QUIT byte for byte: RESP3's null and map after HELLO 3, RESP2's
// before; QUIT answers and closes.
func TestHelloAndQuit(t *testing.T) {
	n := startNode(t, node.Config{})
	r := dialRaw(t, n.RESPAddr())
	if got := r.do("GET", "nothing"); got != nil {
		t.Fatalf("GET of a missing key: %v", got)
	}
	r.send(command("GET", "nothing"))
	if line, _ := r.r.ReadString('\n'); line != "$-1\r\n" {
		t.Fatalf("RESP2 null: %q", line)
	}
	hello, ok := r.do("HELLO", "3", "SETNAME", "raw").([]any)
	if !ok || len(hello) != 14 || hello[0] != "server" || hello[1] != "sluice" || hello[4] != "proto" || hello[5] != int64(3) {
		t.Fatalf("HELLO 3: %v", hello)
	}
	r.send(command("GET", "nothing"))
	if line, _ := r.r.ReadString('\n'); line != "_\r\n" {
		t.Fatalf("RESP3 null: %q", line)
	}
	if got := r.do("CLIENT", "GETNAME"); got != "raw" {
		t.Fatalf("HELLO SETNAME: %v", got)
	}
	if got := r.do("HELLO", "4"); got != respError("NOPROTO unsupported protocol version") {
		t.Fatalf("HELLO 4: %v", got)
	}
	if got := r.do("HELLO", "2"); got.([]any)[5] != int64(2) {
		t.Fatalf("HELLO 2: %v", got)
	}
	if got := r.do("QUIT"); got != "OK" {
		t.Fatalf("QUIT: %v", got)
	}
	if _, err := r.r.ReadByte(); err == nil {
		t.Fatal("the connection is still open after QUIT")
	}
}

// Thousands of pipelined commands in one go, answered in order: writes and
// reads interleaved, and runs of SETs to one partition, which are one
// Upsert each (a later GET sees the last SET of the run).
func TestPipelining(t *testing.T) {
	n := startNode(t, node.Config{})
	rdb := newClient(t, n, func(o *redis.Options) { o.ReadTimeout = 2 * time.Minute })
	ctx := context.Background()
	const keys = 1000
	pipe := rdb.Pipeline()
	for i := range keys {
		pipe.Set(ctx, fmt.Sprint("pipe:", i), fmt.Sprint("v", i), 0)
		if i%4 == 0 {
			pipe.Incr(ctx, fmt.Sprint("count:", i%10))
		}
		pipe.Get(ctx, fmt.Sprint("pipe:", i))
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	j := 0
	for i := range keys {
		if err := cmds[j].Err(); err != nil {
			t.Fatalf("SET %d: %v", i, err)
		}
		j++
		if i%4 == 0 {
			c := fmt.Sprint("count:", i%10)
			counts[c]++
			if got := cmds[j].(*redis.IntCmd).Val(); got != counts[c] {
				t.Fatalf("INCR %s in the pipeline: %d, want %d (in order)", c, got, counts[c])
			}
			j++
		}
		if got := cmds[j].(*redis.StringCmd).Val(); got != fmt.Sprint("v", i) {
			t.Fatalf("GET pipe:%d in the pipeline: %q", i, got)
		}
		j++
	}
	if j != len(cmds) {
		t.Fatalf("%d answers for %d commands", len(cmds), j)
	}
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprint("pipe:", i)
	}
	got, err := rdb.MGet(ctx, names...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != fmt.Sprint("v", i) {
			t.Fatalf("MGET %s: %v", names[i], v)
		}
	}

	// Runs of SETs to one partition, a GET after each run of 500.
	same := []string{keyIn(t, n, 1, "a"), keyIn(t, n, 1, "b")}
	pipe = rdb.Pipeline()
	for i := range 4000 {
		pipe.Set(ctx, same[i%2], fmt.Sprint(i), 0)
		if i%500 == 499 {
			pipe.Get(ctx, same[0])
			pipe.Get(ctx, same[1])
		}
	}
	if cmds, err = pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
	}
	for r := range 8 {
		at := 501*(r+1) + r // the GETs after the run's 500 SETs
		last := 500*(r+1) - 1
		if a, b := cmds[at-1].(*redis.StringCmd).Val(), cmds[at].(*redis.StringCmd).Val(); a != fmt.Sprint(last-1) || b != fmt.Sprint(last) {
			t.Fatalf("GETs after %d SETs: %s=%s %s=%s, want the run's last SETs", last+1, same[0], a, same[1], b)
		}
	}
}
