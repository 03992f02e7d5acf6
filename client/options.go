package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// MaxRequestBytes is the largest request a node's data port takes (its
// gRPC receive limit). The client refuses a larger one itself, with
// InvalidArgument: the node's own answer, ResourceExhausted "received message
// larger than max", would never change on a retry.
const MaxRequestBytes = 8 << 20

// Option configures a Client (Dial).
type Option func(*Client)

// WithTLS connects over TLS: tc verifies the nodes (RootCAs) and may present
// a client certificate (nodes started with --data-client-ca require one).
func WithTLS(tc *tls.Config) Option {
	return func(c *Client) { c.creds = credentials.NewTLS(tc) }
}

// WithToken sends "authorization: Bearer <token>" on every call: the data
// token of nodes started with --data-token-file.
func WithToken(token string) Option {
	return func(c *Client) { c.token = bearer(token) }
}

// WithMaxAttempts bounds the tries of one call: answers that say the
// request was not applied are tried again, with backoff, until this many
// were made or the call's context ends. Without it a call whose context has
// a deadline is tried until the deadline (a partition restoring after a
// move or a failover comes back within it), and one without a deadline
// DefaultMaxAttempts times.
func WithMaxAttempts(n int) Option {
	return func(c *Client) { c.maxAttempts = max(n, 1) }
}

// WithDialTimeout bounds the making of one connection to a node (default
// DefaultDialTimeout); a node that cannot be reached fails the call with a
// *ConnectError.
func WithDialTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.dial.timeout = d
		}
	}
}

// Dial returns a client that learns the cluster through addrs (any nodes).
// It connects lazily: no call is made before the first request.
func Dial(addrs []string, opts ...Option) (*Client, error) {
	if len(addrs) == 0 || addrs[0] == "" {
		return nil, fmt.Errorf("client: no address")
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return nil, err
		}
	}
	c := &Client{entries: addrs, creds: insecure.NewCredentials(), conns: make(map[string]*grpc.ClientConn), session: map[int32]int64{},
		dial: &dialer{timeout: DefaultDialTimeout, failed: map[string]error{}}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// New returns a client that learns the cluster through addrs (any nodes),
// over plaintext without a token.
func New(addrs ...string) (*Client, error) { return Dial(addrs) }

// NewTLS is New over TLS: tc verifies the nodes (RootCAs) and may present a
// client certificate.
func NewTLS(tc *tls.Config, addrs ...string) (*Client, error) { return Dial(addrs, WithTLS(tc)) }

// bearer is a per-call credential; it works over plaintext connections too
// (a node's TLS is optional). Its String keeps the token out of logs.
type bearer string

func (t bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

func (t bearer) String() string { return fmt.Sprintf("token(%d bytes)", len(t)) }

// refuseOversized answers a request over MaxRequestBytes with InvalidArgument
// before it is sent.
func refuseOversized(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if m, ok := req.(proto.Message); ok {
		if size := proto.Size(m); size > MaxRequestBytes {
			return status.Errorf(codes.InvalidArgument, "client: a %s request of %d bytes is over a node's limit of %d bytes (an Upsert carries at most 1 MiB of keys and values)",
				method[strings.LastIndexByte(method, '/')+1:], size, MaxRequestBytes)
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
