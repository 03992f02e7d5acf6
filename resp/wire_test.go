package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/redcon"
)

// chunkConn is a client whose bytes arrive in chunks of random sizes (at
// most max bytes) and then end; what is written to it is kept.
type chunkConn struct {
	net.Conn // nil: only Read, Write and SetWriteDeadline are called
	in       []byte
	rng      *rand.Rand
	max      int
	out      bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.in), 1+c.rng.IntN(c.max))
	copy(p, c.in[:n])
	c.in = c.in[n:]
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

// wireRead sends in through a wireConn in chunks of at most chunk bytes and
// returns the commands redcon reads from it, what the wireConn wrote back
// (a refusal) and the error that ended them.
func wireRead(in []byte, chunk int, mustAuth func() bool, rng *rand.Rand) (cmds [][]string, wrote string, err error) {
	cc := &chunkConn{in: in, rng: rng, max: chunk}
	rd := redcon.NewReader(&wireConn{Conn: cc, mustAuth: mustAuth})
	for {
		cmd, err := rd.ReadCommand()
		if err != nil {
			return cmds, cc.out.String(), err
		}
		var args []string
		for _, a := range cmd.Args {
			args = append(args, string(a))
		}
		cmds = append(cmds, args)
	}
}

// Valid input in any split is handed to redcon whole and in order; empty
// arrays are dropped and inline commands turned into arrays, as Redis reads
// them.
func TestWireHandsValidInputInAnyChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var in []byte
		var want [][]string
		for range 1 + rng.IntN(30) {
			switch rng.IntN(6) {
			case 0:
				n := rng.IntN(100)
				in = fmt.Appendf(in, "PING %d\r\n", n) // inline
				want = append(want, []string{"PING", fmt.Sprint(n)})
			case 1:
				in = append(in, []string{"*0\r\n", "*-1\r\n", "\r\n", " \n"}[rng.IntN(4)]...) // empty: dropped
			case 2:
				in = append(in, "SET 'a b' \"c\\x00d\\n\"\n"...)
				want = append(want, []string{"SET", "a b", "c\x00d\n"})
			default:
				var args []string
				for range 1 + rng.IntN(5) {
					args = append(args, strings.Repeat("x", rng.IntN(3000)))
				}
				in = fmt.Appendf(in, "*%d\r\n", len(args))
				for _, a := range args {
					in = fmt.Appendf(in, "$%d\r\n%s\r\n", len(a), a)
				}
				want = append(want, args)
			}
		}
		if round == 0 { // one as large as a command may be
			a := strings.Repeat("v", MaxCommandBytes-64)
			in = fmt.Appendf(in, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n", len(a), a)
			want = append(want, []string{"SET", "k", a})
		}
		got, wrote, err := wireRead(in, 1+rng.IntN(9000), nil, rng)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("round %d: %v (wrote %q)", round, err, wrote)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: redcon read %d commands of %d", round, len(got), len(want))
		}
		for i := range want {
			if !slices.Equal(got[i], want[i]) {
				t.Fatalf("round %d: command %d is %.60q, want %.60q", round, i, got[i], want[i])
			}
		}
	}
}

// What cannot fit, and what Redis refuses, is refused with Redis's words
// (and sluice's limits named) after the commands before it were handed.
func TestWireRefusesWhatCannotFitAtItsHeader(t *testing.T) {
	ping := "*1\r\n$4\r\nPING\r\n"
	for _, c := range []struct {
		in, want string
		unauth   bool
	}{
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999\r\n", "a bulk string of 99999999 bytes is over sluice's limit of 1114112 bytes a command", false},
		{"*999999999\r\n", "a command of 999999999 arguments cannot fit", false},
		// A command that arrives slowly, in pieces, is counted whole.
		{"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000\r\n" + strings.Repeat("v", 1000000) + "\r\n$200000\r\n", "a command of more than 1200043 bytes (at its argument 4 of 4) is over sluice's limit of 1114112 bytes a command", false},
		{"*1\r\n$0000000000000000000001\r\n", "invalid bulk length", false},
		{"*1\r\n$+4\r\nPING\r\n", "invalid bulk length", false},
		{"*1\r\n$04\r\nPING\r\n", "invalid bulk length", false},
		{"*1\r\n$-1\r\n", "invalid bulk length", false},
		{"*+1\r\n$4\r\nPING\r\n", "invalid multibulk length", false},
		{"*01\r\n$4\r\nPING\r\n", "invalid multibulk length", false},
		{"*x\r\n", "invalid multibulk length", false},
		{"*1\r\n+OK\r\n", "expected '$', got '+'", false},
		{"*1\r\n$4\r\nPINGxx", "invalid bulk length (a bulk string of 4 bytes is not followed by CRLF)", false},
		{strings.Repeat("a", MaxInlineBytes+2), "too big inline request", false},
		{"SET \"a\n", "unbalanced quotes in request", false},
		{"SET 'a'b c\r\n", "unbalanced quotes in request", false},
		// Before AUTH: Redis's limits.
		{"*11\r\n", "unauthenticated multibulk length (at most 10 arguments a command before AUTH)", true},
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16385\r\n", "unauthenticated bulk length (a bulk string of 16385 bytes; at most 16384 before AUTH)", true},
		{"GET a b c d e f g h i j\r\n", "unauthenticated multibulk length", true},
	} {
		rng := rand.New(rand.NewPCG(3, 4))
		var mustAuth func() bool
		if c.unauth {
			mustAuth = func() bool { return true }
		}
		got, wrote, err := wireRead([]byte(ping+c.in), 64, mustAuth, rng)
		if !errors.Is(err, errRefused) || !strings.HasPrefix(wrote, "-ERR Protocol error: "+c.want) || !strings.HasSuffix(wrote, "\r\n") {
			t.Errorf("%.40q: %v, wrote %q; want the refusal %q", c.in, err, wrote, c.want)
		}
		if len(got) != 1 || got[0][0] != "PING" {
			t.Errorf("%.40q: the command before it: %q", c.in, got)
		}
	}
	// Redis's limits before AUTH no longer apply once it passed: the
	// command after AUTH is checked once AUTH has run.
	authed := false
	big := strings.Repeat("v", 100<<10)
	in := fmt.Sprintf("*2\r\n$4\r\nAUTH\r\n$1\r\nt\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n", len(big), big)
	rd := redcon.NewReader(&wireConn{Conn: &chunkConn{in: []byte(in), rng: rand.New(rand.NewPCG(5, 6)), max: 5000}, mustAuth: func() bool { return !authed }})
	if cmd, err := rd.ReadCommand(); err != nil || string(cmd.Args[0]) != "AUTH" {
		t.Fatalf("AUTH: %v", err)
	}
	authed = true
	if cmd, err := rd.ReadCommand(); err != nil || len(cmd.Args) != 3 || len(cmd.Args[2]) != len(big) {
		t.Fatalf("the SET after AUTH: %v", err)
	}
}

// Inline commands are split as Redis splits them (sdssplitargs).
func TestSplitInlineAsRedis(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
		ok   bool
	}{
		{"x\x00y", []string{"x"}, true}, // a NUL ends the line, as in C
		{"GET a\x00 b", []string{"GET", "a"}, true},
		{`x\x00y`, []string{`x\x00y`}, true}, // no escapes outside quotes
		{`"x\x00y"`, []string{"x\x00y"}, true},
		{`"a\"b" 'c\'d' "\n\r\t\b\a\q"`, []string{`a"b`, "c'd", "\n\r\t\b\aq"}, true},
		{"  SET\tk \v\f v  ", []string{"SET", "k", "v"}, true},
		{`SET k ""`, []string{"SET", "k", ""}, true},
		{`a"b c"`, []string{"ab c"}, true}, // a quote in a word opens a quoted part
		{"", nil, true},
		{"   ", nil, true},
		{`"abc`, nil, false},
		{`"abc"d`, nil, false},
		{`'abc`, nil, false},
		{"\"a\x00b\"", nil, false}, // a NUL inside quotes ends the line before they close
	} {
		got, ok := splitInline([]byte(c.line))
		var gs []string
		for _, a := range got {
			gs = append(gs, string(a))
		}
		if ok != c.ok || !slices.Equal(gs, c.want) {
			t.Errorf("%q: %q %v, want %q %v", c.line, gs, ok, c.want, c.ok)
		}
	}
}

// Integers are read as Redis reads them.
func TestParseIntegerAsRedis(t *testing.T) {
	for s, want := range map[string]bool{"0": true, "5": true, "-5": true, "9223372036854775807": true, "-9223372036854775808": true,
		"+5": false, "012": false, "-0": false, "00": false, "": false, "-": false, " 5": false, "5 ": false, "9223372036854775808": false, "1e3": false, "0x10": false} {
		if _, ok := parseInteger([]byte(s)); ok != want {
			t.Errorf("%q: %v, want %v", s, ok, want)
		}
	}
}
