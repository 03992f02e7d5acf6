package node

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// failingListener fails its first fails Accepts with err.
type failingListener struct {
	net.Listener
	fails atomic.Int32
	err   error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// The embedded broker's listener retries an accept that ran out of
// descriptors (kfake's accept loop ends at the first error and closes the
// listener), and a close the node did not ask for stops the node, naming
// the loss.
func TestBrokerListenerRetriesAndReportsItsLoss(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inner := &failingListener{Listener: raw, err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}}
	inner.fails.Store(3)
	var lost atomic.Value
	closing := atomic.Bool{}
	l := &brokerListener{Listener: inner, log: zerolog.Nop(), closing: closing.Load, lost: func(err error) { lost.Store(err) }}

	go func() {
		if c, err := net.Dial("tcp", raw.Addr().String()); err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1))
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("accept after 3 x too many open files: %v, want the connection", err)
	}
	c.Close()

	l.Close()
	err, _ = lost.Load().(error)
	if !errors.Is(err, ErrEmbeddedBrokerLost) || !strings.Contains(err.Error(), raw.Addr().String()) {
		t.Fatalf("a close the node did not ask for: lost(%v), want ErrEmbeddedBrokerLost naming %s", err, raw.Addr())
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept on the closed listener: %v, want net.ErrClosed", err)
	}

	// The node's own close is no loss.
	raw2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closing.Store(true)
	called := false
	l2 := &brokerListener{Listener: raw2, log: zerolog.Nop(), closing: closing.Load, lost: func(error) { called = true }}
	l2.Close()
	if called {
		t.Fatal("the node's own close of the broker's listener was taken for its loss")
	}
}

// A --max-connections below the minimum is refused, naming the limit.
func TestMaxConnectionsBelowTheMinimumIsRefused(t *testing.T) {
	cfg := Config{ControlToken: "test-token", MaxConnections: 3}
	err := cfg.setDefaults()
	if err == nil || !strings.Contains(err.Error(), "--max-connections 3") || !strings.Contains(err.Error(), "16") {
		t.Fatalf("MaxConnections 3: %v, want refused naming the minimum of 16", err)
	}
}
