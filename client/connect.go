package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultDialTimeout bounds the making of one connection (WithDialTimeout).
const DefaultDialTimeout = 5 * time.Second

// ConnectError says a node could not be reached at all: nothing listens at
// Addr, its host name does not resolve, or the connection timed out. It is
// returned at once, not retried until the caller's deadline: no answer from
// the cluster could have been had. Its gRPC status is Unavailable.
type ConnectError struct {
	Addr string
	Err  error
	// notSent: the call was never sent (its connection never came up), so
	// it may be tried again, on routes fetched again.
	notSent bool
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot connect to %s: %v", e.Addr, cause(e.Err))
}

func (e *ConnectError) Unwrap() error { return e.Err }

// GRPCStatus makes status.Code(err) Unavailable.
func (e *ConnectError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

// cause is a dial error without the address it repeats: "connection
// refused", "lookup nosuchhost: no such host".
func cause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// dialer makes the client's connections and remembers, per address, why the
// last one failed (nil once one succeeds): gRPC itself only says
// "connection error" and retries in the background.
type dialer struct {
	timeout time.Duration
	mu      sync.Mutex
	failed  map[string]error
}

// lastFailure is why the last connection to addr failed, or an error
// saying what, when the dial itself worked (a handshake that never ended).
func (d *dialer) lastFailure(addr, what string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.failed[addr]; err != nil {
		return err
	}
	return errors.New(what)
}

func (d *dialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.failed[addr] = err
	} else {
		delete(d.failed, addr)
	}
	return conn, err
}

// explain turns a call's Unavailable answer from addr into a ConnectError
// when the connection to addr could not be made.
func (d *dialer) explain(addr string, err error) error {
	if err == nil || status.Code(err) != codes.Unavailable {
		return err
	}
	d.mu.Lock()
	derr := d.failed[addr]
	d.mu.Unlock()
	if derr == nil {
		return err
	}
	return &ConnectError{Addr: addr, Err: derr}
}

// target is addr as gRPC's target: passthrough (the dialer resolves the
// name, so that a failed lookup is named), unless addr names its scheme.
func target(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return "passthrough:///" + addr
}

// checkAddr refuses an address gRPC would only fail to reach later.
func checkAddr(addr string) error {
	if strings.Contains(addr, "://") {
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("client: address %q is not HOST:PORT (a node's data port is 7400 by default: 127.0.0.1:7400)", addr)
	}
	return nil
}
