package integration

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
)

// Ports for processes this package starts, restarts and kills. They come from
// below the kernel's ephemeral range: a port from that range (what listening
// on :0 gives) is free only until some process's outgoing connection takes it
// as its local port — and here many do, while a killed node or a restarting
// broker is down, before it binds its port again.

var (
	portsMu sync.Mutex
	given   = map[int]bool{} // never hand out a port twice in one test binary
)

// freePorts returns the first of n consecutive free ports.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	const lo = 10000
	hi := ephemeralLow()
	for try := 0; try < 1000; try++ {
		base := lo + rand.IntN(hi-lo-n)
		if free(base, n) {
			for p := base; p < base+n; p++ {
				given[p] = true
			}
			return base
		}
	}
	t.Fatalf("no %d free consecutive ports in [%d, %d)", n, lo, hi)
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1))
}

// free reports whether ports base…base+n-1 are unused here and can be bound.
func free(base, n int) bool {
	for p := base; p < base+n; p++ {
		if given[p] {
			return false
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// ephemeralLow is the start of the kernel's ephemeral port range (Linux:
// 32768 unless configured).
func ephemeralLow() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if _, err := fmt.Sscan(string(b), &a, &z); err == nil && a > 12000 {
			lo = a
		}
	}
	return lo
}
