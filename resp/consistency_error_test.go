package resp

import (
	"strings"
	"testing"
)

// SLUICE.CONSISTENCY with an unknown level names the levels there are. Found
// from outside (helper N): `redis-cli SLUICE.CONSISTENCY bogus` answered
// "ERR unknown consistency level 'bogus': linearizable (the default), s..."
// — the whole message went through the 64-byte quoting of an argument, so
// the list of levels was cut before "session" and "eventual".
func TestAnUnknownLevelsErrorNamesEveryLevel(t *testing.T) {
	c := &conn{proto: 2}
	c.cmdConsistency([][]byte{[]byte("SLUICE.CONSISTENCY"), []byte("bogus")})
	got := string(c.out)
	if !strings.HasPrefix(got, "-ERR ") || !strings.Contains(got, "session") || !strings.Contains(got, "eventual") {
		t.Fatalf("SLUICE.CONSISTENCY bogus answered %q, want an error naming linearizable, session and eventual", got)
	}
}
