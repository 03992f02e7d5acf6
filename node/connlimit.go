package node

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/netutil"
)

// A flood of idle connections once took every file descriptor of a node
// (two clients, 9,990 connections each with an HTTP/2 preface, against a
// limit of 20,000): its own dials to the embedded broker failed ("socket:
// too many open files"), the broker's accept loop took the error for the
// end of its listener and closed it, and the node lived on serving nothing
// until it was killed. So:
//
//   - every port the node listens on takes at most MaxConnections
//     connections at once (more wait in the kernel's backlog until one
//     closes), leaving the rest of the descriptor table to the node's own
//     files and broker connections;
//   - the embedded broker's listener retries an accept that failed (as
//     net/http and gRPC do) instead of ending, and a listener closed
//     other than by the node's Close stops the node with ErrEmbeddedBrokerLost,
//     so that a supervisor restarts it: never a node that lives on and
//     serves nothing.
//
// Go raises the soft RLIMIT_NOFILE to the hard limit at start (os, since Go
// 1.19); the default limit is taken from what that gives.

// ErrEmbeddedBrokerLost is the cause a node gives (Err) when its embedded
// broker stopped listening while the node ran.
var ErrEmbeddedBrokerLost = errors.New("node: the embedded broker's listener closed while the node ran")

// defaultMaxConnections is MaxConnections' default: an eighth of the open
// file limit per port (four ports: data, control, HTTP, the embedded
// broker), so that half of the table stays for the node's own files and
// broker connections; at least 256 and at most 16,384.
func defaultMaxConnections() int {
	return min(max(openFileLimit()/8, 256), 16384)
}

// minMaxConnections is the least MaxConnections taken.
const minMaxConnections = 16

// limit bounds the connections ln holds open at once.
func (n *Node) limit(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, n.cfg.MaxConnections)
}

// brokerListener is the embedded broker's listener: kfake's accept loop
// ends at the first error Accept returns, closing the listener, so this one
// returns none but the one of a closed listener. It retries the others (too
// many open files, a connection aborted before it was accepted) with a
// backoff of 5 ms doubling to 1 s, warning once a second. A Close not
// preceded by closing (the node's own) is the listener's loss: lost is
// called.
type brokerListener struct {
	net.Listener
	log     zerolog.Logger
	closing func() bool
	lost    func(error)

	mu     sync.Mutex
	closed bool
}

func (l *brokerListener) Accept() (net.Conn, error) {
	delay, warned := time.Duration(0), time.Time{}
	for {
		c, err := l.Listener.Accept()
		if err == nil || errors.Is(err, net.ErrClosed) || l.isClosed() {
			return c, err
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		if time.Since(warned) >= time.Second {
			warned = time.Now()
			l.log.Warn().Err(err).Dur("retry_in", delay).Str("addr", l.Addr().String()).
				Msg("the embedded broker could not accept a connection; retrying (too many open files: lower --max-connections or raise the open file limit)")
		}
		time.Sleep(delay)
	}
}

func (l *brokerListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *brokerListener) Close() error {
	l.mu.Lock()
	first := !l.closed
	l.closed = true
	l.mu.Unlock()
	if first && !l.closing() {
		l.lost(fmt.Errorf("%w (%s): restart the node", ErrEmbeddedBrokerLost, l.Addr()))
	}
	return l.Listener.Close()
}
