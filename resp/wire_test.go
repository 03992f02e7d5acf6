package resp

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tidwall/redcon"
)

// frames follows any split of valid input without refusing it, ending
// between commands, and agrees with redcon on where commands end.
func TestFramesFollowValidInputInAnyChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var in []byte
		commands := 0
		for range 1 + rng.IntN(20) {
			if rng.IntN(5) == 0 {
				in = append(in, fmt.Sprintf("PING %d\r\n", rng.IntN(100))...) // inline
			} else {
				args := 1 + rng.IntN(5)
				in = fmt.Appendf(in, "*%d\r\n", args)
				for range args {
					a := strings.Repeat("x", rng.IntN(300))
					in = fmt.Appendf(in, "$%d\r\n%s\r\n", len(a), a)
				}
			}
			commands++
		}
		if round == 0 { // one as large as a command may be
			a := strings.Repeat("v", MaxCommandBytes-64)
			in = fmt.Appendf(in, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n", len(a), a)
			commands++
		}
		var f frames
		for rest := in; len(rest) > 0; {
			n := 1 + rng.IntN(min(len(rest), 700))
			if k, refused := f.scan(rest[:n]); refused != "" || k != n {
				t.Fatalf("round %d: refused valid input (%q), took %d of %d", round, refused, k, n)
			}
			rest = rest[n:]
		}
		if f.state != stStart || f.broken {
			t.Fatalf("round %d: state %d (broken %v) after whole commands", round, f.state, f.broken)
		}
		rd := redcon.NewReader(strings.NewReader(string(in)))
		got := 0
		for {
			if _, err := rd.ReadCommand(); err != nil {
				break
			}
			got++
		}
		if got != commands {
			t.Fatalf("round %d: redcon read %d commands of %d", round, got, commands)
		}
	}
}

func TestFramesRefuseWhatCannotFit(t *testing.T) {
	for _, c := range []struct {
		in, want string
		k        int // bytes handed over
	}{
		{"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999\r\n", "a bulk string of 99999999 bytes is over", 43},
		{"*2\r\n$3\r\nGET\r\n$+1114113\r\n", "a bulk string of 1114113 bytes is over", 22},
		{"*999999999\r\n", "a command of 999999999 arguments cannot fit", 10},
		{"*1\r\n$0000000000000000000001\r\n", "invalid length", 23},
		{strings.Repeat("a", MaxInlineBytes+1), "too big inline request", MaxInlineBytes},
	} {
		var f frames
		k, refused := f.scan([]byte(c.in))
		if !strings.Contains(refused, c.want) || k != c.k {
			t.Errorf("%.40q: refused %q after %d bytes, want %q after %d", c.in, refused, k, c.want, c.k)
		}
	}
	// What redcon refuses itself is left to it.
	for _, in := range []string{"*0\r\n", "*-1\r\n", "*1\r\n+OK\r\n", "*1\r\n$-5\r\n", "*1\r\n$\r\n", "*x\r\n"} {
		var f frames
		if k, refused := f.scan([]byte(in)); refused != "" || k != len(in) || !f.broken {
			t.Errorf("%q: refused %q, took %d, broken %v: want it handed to redcon", in, refused, k, f.broken)
		}
	}
}
