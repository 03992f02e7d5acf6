package resp_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/node"
)

// liveHeap is the heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// Before AUTH a connection is held to Redis's limits (10 arguments, bulk
// strings of 16 KiB), checked at the headers: many unauthenticated
// connections each sending a SET of 1.1 MB make the node hold nothing of
// them (it held ~2 MiB each: 800 took it from 50 MB to 1.7 GB), each is
// refused with an error naming the limit, and an authenticated client
// still sets 1 MiB, in a pipeline after its AUTH too.
func TestBeforeAuthACommandIsHeldToRedisLimits(t *testing.T) {
	n := startNode(t, node.Config{DataToken: "s3cret"})
	const conns = 100
	frame := command("SET", "k", strings.Repeat("v", 1100000))
	frame = frame[:len(frame)-100] // all but its end: a node that buffers it waits for the rest
	before := liveHeap()
	var answered atomic.Int64
	var wrong sync.Map
	for i := range conns {
		r := dialRaw(t, n.RESPAddr())
		go r.c.Write(frame) // fails once the node closed the connection
		go func() {
			_ = r.c.SetReadDeadline(time.Now().Add(90 * time.Second))
			got, err := readReply(r.r)
			if s, ok := got.(respError); err != nil || !ok || !strings.HasPrefix(string(s), "ERR Protocol error: unauthenticated bulk length (a bulk string of 1100000 bytes; at most 16384 before AUTH)") {
				wrong.Store(i, fmt.Sprintf("%v %v", got, err))
			}
			if _, err := r.r.ReadByte(); err == nil {
				wrong.Store(i, "the connection is still open")
			}
			answered.Add(1)
		}()
	}
	deadline := time.Now().Add(90 * time.Second)
	for answered.Load() < conns {
		if grew := liveHeap() - before; grew > 32<<20 {
			t.Fatalf("the heap grew by %d MiB with %d unauthenticated connections each sending a SET of 1.1 MB: the node holds their frames", grew>>20, conns)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d unauthenticated connections were answered within 90s", answered.Load(), conns)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wrong.Range(func(k, v any) bool {
		t.Errorf("connection %v: %v", k, v)
		return true
	})
	// An inline command, and an array of more than 10 arguments.
	for _, in := range []string{"GET a b c d e f g h i j\r\n", "*11\r\n"} {
		r := dialRaw(t, n.RESPAddr())
		r.send([]byte(in))
		if got, ok := r.reply().(respError); !ok || !strings.HasPrefix(string(got), "ERR Protocol error: unauthenticated multibulk length (at most 10 arguments a command before AUTH)") {
			t.Errorf("%q before AUTH: %v", in, got)
		}
	}

	ctx := context.Background()
	rdb := newClient(t, n, func(o *redis.Options) { o.Password = "s3cret" })
	big := strings.Repeat("b", kv.MaxBatchBytes-3)
	if err := rdb.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatalf("an authenticated SET of 1 MiB: %v", err)
	}
	if got, err := rdb.Get(ctx, "big").Result(); err != nil || got != big {
		t.Fatalf("GET of the 1 MiB value: %d bytes, %v", len(got), err)
	}
	// AUTH and a big SET in one write: the SET is checked once AUTH ran.
	r := dialRaw(t, n.RESPAddr())
	r.send(append(command("AUTH", "s3cret"), command("SET", "after", big[:100<<10])...))
	if a, s := r.reply(), r.reply(); a != "OK" || s != "OK" {
		t.Fatalf("AUTH then SET of 100 KiB, pipelined: %v %v", a, s)
	}
}

// Empty arrays (*0, *-1) and empty inline lines are ignored, as Redis
// ignores them: no answer, and the connection goes on.
func TestEmptyCommandsAreIgnored(t *testing.T) {
	n := startNode(t, node.Config{})
	r := dialRaw(t, n.RESPAddr())
	r.send([]byte("*0\r\n*-1\r\n\r\n   \r\n*-5\r\n"))
	if got := r.do("PING"); got != "PONG" {
		t.Fatalf("after empty commands: %v", got)
	}
}

// Inline commands are split as Redis splits them: a NUL byte outside
// quotes ends the line, quotes and \xHH escapes work, unbalanced quotes
// are a protocol error.
func TestInlineCommandsAreReadAsRedisReadsThem(t *testing.T) {
	n := startNode(t, node.Config{})
	r := dialRaw(t, n.RESPAddr())
	for _, c := range []struct {
		line string
		want any
	}{
		{"x\x00y\r\n", respError("ERR unknown command 'x', with args beginning with: ")},
		{"SET \"sp ace\" \"a\\x00b\\n\"\r\n", "OK"},
		{"GET 'sp ace'\n", "a\x00b\n"},
		{"SET k\x00 ignored\r\n", respError("ERR wrong number of arguments for 'set' command")},
		{"PING\r\n", "PONG"},
	} {
		r.send([]byte(c.line))
		if got := r.reply(); got != c.want {
			t.Errorf("%q: %q, want %q", c.line, got, c.want)
		}
	}
	r.send([]byte("SET \"k v\r\n"))
	if got := r.reply(); got != respError("ERR Protocol error: unbalanced quotes in request") {
		t.Fatalf("unbalanced quotes: %v", got)
	}
	if _, err := r.r.ReadByte(); err == nil {
		t.Fatal("the connection is still open after a protocol error")
	}
}

// A pipeline of 10,000 commands, good and bad (unknown commands, wrong
// arity, bad integers, empty arrays, inline commands), sent at once, is
// answered command by command, in order, each with its own answer.
func TestAPipelineOfGoodAndBadCommandsIsAnsweredInOrder(t *testing.T) {
	n := startNode(t, node.Config{})
	r := dialRaw(t, n.RESPAddr())
	var in []byte
	var want []any
	counter := int64(0)
	for i := range 10000 {
		k := fmt.Sprint("k", i%50)
		switch i % 10 {
		case 0, 1:
			in = append(in, command("SET", k, fmt.Sprint("v", i))...)
			want = append(want, "OK")
		case 2:
			in = append(in, command("GET", fmt.Sprint("k", (i-2)%50))...)
			want = append(want, fmt.Sprint("v", i-2))
		case 3:
			in = append(in, command("NOPE", k)...)
			want = append(want, respError(fmt.Sprintf("ERR unknown command 'NOPE', with args beginning with: '%s' ", k)))
		case 4:
			in = append(in, command("GET")...)
			want = append(want, respError("ERR wrong number of arguments for 'get' command"))
		case 5:
			in = append(in, command("INCRBY", "counter", []string{"+5", "012", "x", "-0"}[i/10%4])...)
			want = append(want, respError("ERR value is not an integer or out of range"))
		case 6:
			counter += 3
			in = append(in, command("INCRBY", "counter", "3")...)
			want = append(want, counter)
		case 7:
			in = append(in, "*0\r\nPING\r\n"...)
			want = append(want, "PONG")
		case 8:
			in = append(in, command("SET", k, "x", "EX", "+5")...)
			want = append(want, respError("ERR value is not an integer or out of range"))
		case 9:
			in = append(in, command("MGET", fmt.Sprint("k", (i-9)%50), "absent")...)
			want = append(want, []any{fmt.Sprint("v", i-9), nil})
		}
	}
	go r.c.Write(in)
	for i, w := range want {
		got := r.reply()
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Fatalf("answer %d: %v, want %v", i, got, w)
		}
	}
	if got := r.do("PING"); got != "PONG" {
		t.Fatal(got)
	}
}

// A client that pipelines writes faster than the node commits them, and
// reads no answer until the end, does not grow the node: redcon grows its
// input buffer whenever it fills in the middle of a command and rewinds it
// only once empty, so a steady pipeline made it hold all it was sent; now
// it empties at least every 1 MiB. (The writes go to one key: writes to many keys
// grow the store's memtables, which is not what is measured here.)
func TestAPipelineOfWritesDoesNotGrowTheNode(t *testing.T) {
	n := startNode(t, node.Config{})
	r := dialRaw(t, n.RESPAddr())
	const sets = 40000
	value := strings.Repeat("v", 1000)
	var in []byte
	for range sets {
		in = append(in, command("SET", "k", value)...) // one partition: runs of SETs are one Upsert each
	}
	before := liveHeap()
	sent := make(chan error, 1)
	go func() { _, err := r.c.Write(in); sent <- err }()
	most := int64(0)
	deadline := time.Now().Add(120 * time.Second)
	for done := false; !done; {
		select {
		case err := <-sent:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		case <-time.After(100 * time.Millisecond):
		}
		most = max(most, liveHeap()-before)
		if time.Now().After(deadline) {
			t.Fatal("the node did not read the pipeline within 120s")
		}
	}
	t.Logf("a pipeline of %d SETs (%d MiB): the heap grew by at most %d KiB", sets, len(in)>>20, most>>10)
	if most > 16<<20 {
		t.Fatalf("the heap grew by %d MiB while a pipeline of %d MiB of SETs was read: the node holds what it was sent", most>>20, len(in)>>20)
	}
	for i := range sets {
		if got := r.reply(); got != "OK" {
			t.Fatalf("SET %d: %v", i, got)
		}
	}
}

// A client that pipelines MGETs without reading the answers blocks its own
// connection, as with GETs (TestASlowReaderDoesNotGrowTheNode).
func TestASlowReaderOfMGETsDoesNotGrowTheNode(t *testing.T) {
	n := startNode(t, node.Config{})
	ctx := context.Background()
	value := strings.Repeat("v", 16<<10)
	rdb := newClient(t, n)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprint("big", i)
		if err := rdb.Set(ctx, keys[i], value, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r := dialRaw(t, n.RESPAddr())
	const mgets = 160 // 256 MiB of answers
	in := bytes.Repeat(command(append([]string{"MGET"}, keys...)...), mgets)
	before := liveHeap()
	go r.c.Write(in)
	waitUnread(t, r)
	grew := liveHeap() - before
	t.Logf("%d MGETs of %d values of 16 KiB unread: the heap grew by %d KiB", mgets, len(keys), grew>>10)
	if grew > 24<<20 {
		t.Fatalf("the heap grew by %d MiB while the client did not read: the node holds its answers", grew>>20)
	}
	for i := range mgets {
		got, ok := r.reply().([]any)
		if !ok || len(got) != len(keys) || got[0] != value || got[len(keys)-1] != value {
			t.Fatalf("MGET %d: %d values", i, len(got))
		}
	}
}

// waitUnread waits until the node stopped writing to r: the client's
// receive queue no longer grows (the TCP window is full).
func waitUnread(t *testing.T, r *raw) {
	t.Helper()
	last, stable := -1, 0
	waitFor(t, 60*time.Second, "the node blocked on the unread answers", func() bool {
		q := queued(t, r)
		if q == last && q > 0 {
			stable++
		} else {
			stable = 0
		}
		last = q
		return stable >= 25 // half a second unchanged
	})
}

// queued is how many bytes wait unread in r's receive queue.
func queued(t *testing.T, r *raw) int {
	t.Helper()
	fd, err := r.c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fd.Control(func(s uintptr) { n, _ = unix.IoctlGetInt(int(s), unix.SIOCINQ) })
	return n
}
