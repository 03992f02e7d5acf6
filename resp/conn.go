package resp

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"

	"github.com/tidwall/redcon"
	"google.golang.org/grpc/stats"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// Output of one connection. Replies are appended to the connection's
// buffer and written when a batch of pipelined commands is answered, or
// as soon as the buffer holds flushAt bytes: a client that pipelines
// commands without reading their answers blocks its connection (TCP's
// window) instead of making the node hold them. A value of bigValue bytes
// or more is written from where the data plane read it, not copied.
const (
	flushAt  = 64 << 10
	bigValue = 32 << 10
	// keepOut is the most buffer a connection keeps between batches.
	keepOut = 256 << 10
)

// conn is one client connection's state. redcon runs its commands one at a
// time, on its own goroutine.
type conn struct {
	s     *Server
	rc    redcon.Conn
	nc    net.Conn
	id    int64
	out   []byte
	proto int // 2 or 3 (HELLO)
	// authed: AUTH gave the token (or the node has none).
	authed bool
	name   string
	level  sluicev1.Consistency
	// session is what this connection's writes reached, for SESSION reads.
	session *sluicev1.Session
	// ctx carries the read memory's hold of the commands answered since
	// the last write to the client, given back once written (holds).
	ctx  context.Context
	dead bool // the connection failed or was closed
	get  *sluicev1.GetRequest
}

var callEnd = &stats.End{}

func (s *Server) newConn(rc redcon.Conn) *conn {
	c := &conn{s: s, rc: rc, nc: rc.NetConn(), id: s.ids.Add(1), proto: 2, authed: s.cfg.Token == "",
		session: &sluicev1.Session{Offsets: map[int32]int64{}, Cluster: s.data.Cluster}, ctx: s.ctx, get: &sluicev1.GetRequest{},
		level: s.cfg.Consistency}
	if rm := s.data.ReadMemory; rm != nil {
		// One call's holds for the connection's life: each write to the
		// client gives back what the commands answered in it held.
		c.ctx = rm.TagRPC(s.ctx, nil)
	}
	return c
}

// serve answers one command and the rest of its batch (the commands
// redcon read with it, pipelined): in order, each to its end before the
// next starts, except that a run of SETs to one partition of this node is
// one Upsert (setRun).
func (s *Server) serve(rc redcon.Conn, cmd redcon.Command) {
	c, _ := rc.Context().(*conn)
	if c == nil || c.dead {
		return
	}
	s.running.Add(1)
	defer s.running.Add(-1)
	rest := rc.ReadPipeline()
	args := func(i int) [][]byte {
		if i == 0 {
			return cmd.Args
		}
		return rest[i-1].Args
	}
	for i, n := 0, 1+len(rest); i < n && !c.dead; {
		if s.stopping.Load() {
			c.errorf("ERR sluice: node %s is shutting down; the command was not run: connect to another node", s.data.Node)
			c.flush()
			c.closeConn()
			return
		}
		if k := c.setRun(args, i, n); k > 1 {
			c.guard(args(i), len(c.out), func() { c.setMany(args, i, k) })
			i += k
		} else {
			c.run(args(i), len(c.out))
			i++
		}
		if len(c.out) >= flushAt {
			c.flush()
		}
	}
	c.flush()
}

// run dispatches one command; false if it closed the connection.
func (c *conn) run(args [][]byte, mark int) bool {
	return c.guard(args, mark, func() { c.dispatch(args) })
}

// guard runs a command's work. A panic is answered with an error, logged
// and counted, and the connection closed (the answer may have been half
// written).
func (c *conn) guard(args [][]byte, mark int, work func()) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			name := commandName(args)
			if c.s.cfg.Panics != nil {
				c.s.cfg.Panics.WithLabelValues("resp", name).Inc()
			}
			c.s.cfg.Log.Error().Str("port", "resp").Str("command", name).Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).
				Msg("a RESP command panicked: answered with an error and its connection closed, the node goes on (a bug: please report it with this stack)")
			if mark <= len(c.out) {
				c.out = c.out[:mark]
			}
			c.errorf("ERR sluice: internal error serving %s (a panic, recovered and logged by the node)", name)
			c.flush()
			c.closeConn()
			ok = false
		}
	}()
	work()
	return !c.dead
}

// flush writes the buffered replies and gives back the read memory they
// held.
func (c *conn) flush() {
	if len(c.out) > 0 && !c.dead {
		if _, err := c.nc.Write(c.out); err != nil {
			c.fail()
		}
	}
	c.out = c.out[:0]
	if cap(c.out) > keepOut {
		c.out = nil
	}
	c.release()
}

// release gives back the read memory of the replies written.
func (c *conn) release() {
	if rm := c.s.data.ReadMemory; rm != nil {
		rm.HandleRPC(c.ctx, callEnd)
	}
}

// fail marks a connection whose writes fail: its other pipelined commands
// are not run.
func (c *conn) fail() {
	c.dead = true
	c.nc.Close()
}

// closeConn closes the connection once its replies are written.
func (c *conn) closeConn() {
	c.dead = true
	c.rc.Close()
}

// close is the end of the connection.
func (c *conn) close() {
	c.dead = true
	c.release()
}

// The replies. RESP3 (after HELLO 3) differs from RESP2 in its null and
// its map; the rest is the same bytes.

func (c *conn) ok()             { c.out = append(c.out, "+OK\r\n"...) }
func (c *conn) simple(s string) { c.out = redcon.AppendString(c.out, s) }
func (c *conn) integer(n int64) { c.out = redcon.AppendInt(c.out, n) }
func (c *conn) array(n int)     { c.out = redcon.AppendArray(c.out, n) }
func (c *conn) bulkString(s string) {
	c.out = redcon.AppendBulkString(c.out, s)
}

func (c *conn) null() {
	if c.proto == 3 {
		c.out = append(c.out, "_\r\n"...)
	} else {
		c.out = append(c.out, "$-1\r\n"...)
	}
}

func (c *conn) mapHeader(n int) {
	if c.proto == 3 {
		c.out = append(c.out, '%')
		c.out = strconv.AppendInt(c.out, int64(n), 10)
		c.out = append(c.out, '\r', '\n')
	} else {
		c.array(2 * n)
	}
}

// bulk answers a value. A big one is written from where it is, after
// the replies before it.
func (c *conn) bulk(v []byte) {
	if len(v) < bigValue || c.dead {
		c.out = redcon.AppendBulk(c.out, v)
		return
	}
	c.out = append(c.out, '$')
	c.out = strconv.AppendInt(c.out, int64(len(v)), 10)
	c.out = append(c.out, '\r', '\n')
	if err := writeBuffers(c.nc, net.Buffers{c.out, v, crlf}); err != nil {
		c.fail()
	}
	c.out = c.out[:0]
}

var crlf = []byte("\r\n")

// errorf answers an error; the message is made one line.
func (c *conn) errorf(format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	c.out = append(c.out, '-')
	for i := 0; i < len(msg); i++ {
		b := msg[i]
		if b == '\r' || b == '\n' {
			b = ' '
		}
		c.out = append(c.out, b)
	}
	c.out = append(c.out, '\r', '\n')
}
