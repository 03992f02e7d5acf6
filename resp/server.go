package resp

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/tidwall/redcon"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/server"
)

// Config is what a RESP endpoint serves.
type Config struct {
	// Data is the node's data plane: every command runs its methods in
	// this process, so validation, limits, sessions and consistency are
	// the gRPC port's own.
	Data *server.Data
	// Token, if set, is the data-plane token: a connection must AUTH with it
	// before any command but AUTH, HELLO (with AUTH) and QUIT.
	Token string
	// TLS, if set, serves the endpoint over TLS (the data port's config,
	// client certificates included).
	TLS *tls.Config
	// Forward are data-plane addresses (this node's own will do) through
	// which a key this node does not serve is sent to its owner; PeerTLS
	// and Token are how those calls are made.
	Forward []string
	PeerTLS *tls.Config
	// Log is where failures to serve a connection go.
	Log zerolog.Logger
	// Panics, if set, counts commands that panicked, by command (port
	// "resp"): each is answered with an error and its connection closed.
	Panics *prometheus.CounterVec
	// Consistency is the read level each connection starts with
	// (SLUICE.CONSISTENCY changes it for the connection). Default
	// LINEARIZABLE.
	Consistency sluicev1.Consistency
}

// forwardTimeout bounds a command sent to another node (the forwarding
// client retries within it: a partition moving comes back within it).
const forwardTimeout = 10 * time.Second

// Server is a RESP endpoint of a node.
type Server struct {
	cfg   Config
	data  *server.Data
	fwd   *client.Client
	token [32]byte // SHA-256 of Config.Token
	srv   *redcon.Server

	// ctx ends every command still running when Close gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc
	// stopping: commands are refused, and their connection closed.
	stopping atomic.Bool
	running  atomic.Int64 // commands running now
	conns    sync.WaitGroup
	served   chan struct{} // Serve returned
	ids      atomic.Int64
	cursors  cursors
}

// New returns the endpoint; Serve serves it.
func New(cfg Config) (*Server, error) {
	if cfg.Data == nil {
		return nil, errors.New("resp: no data plane")
	}
	s := &Server{cfg: cfg, data: cfg.Data, served: make(chan struct{})}
	if cfg.Token != "" {
		s.token = sha256.Sum256([]byte(cfg.Token))
	}
	if len(cfg.Forward) > 0 {
		opts := []client.Option{client.WithToken(cfg.Token)}
		if cfg.Token == "" {
			opts = nil
		}
		if cfg.PeerTLS != nil {
			opts = append(opts, client.WithTLS(cfg.PeerTLS))
		}
		fwd, err := client.Dial(cfg.Forward, opts...)
		if err != nil {
			return nil, err
		}
		s.fwd = fwd
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cursors.init()
	s.srv = redcon.NewServer("", s.serve, s.accept, s.closed)
	s.srv.AcceptError = func(err error) {
		cfg.Log.Warn().Err(err).Msg("the RESP port could not accept a connection")
		time.Sleep(10 * time.Millisecond)
	}
	return s, nil
}

// Serve serves connections from ln until Close (ln is closed then). ln
// should bound the connections it holds (node: --max-connections).
func (s *Server) Serve(ln net.Listener) error {
	defer close(s.served)
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	return s.srv.Serve(listener{ln})
}

// Close stops the endpoint gracefully: a command that arrives from now on
// is answered with an error saying the node is shutting down (nothing
// applied) and its connection closed; commands running are waited for, at
// most wait, and their answers written; then every connection is closed.
func (s *Server) Close(wait time.Duration) {
	s.stopping.Store(true)
	deadline := time.Now().Add(wait)
	for s.running.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.cancel()
	if err := s.srv.Close(); err == nil {
		<-s.served // then every connection is closed
	}
	s.conns.Wait()
	if s.fwd != nil {
		s.fwd.Close()
	}
}

func (s *Server) accept(rc redcon.Conn) bool {
	s.conns.Add(1)
	c := s.newConn(rc)
	if w, ok := rc.NetConn().(*wireConn); ok && !c.authed {
		// Read runs on the connection's goroutine, as its commands do.
		w.mustAuth = func() bool { return !c.authed }
	}
	rc.SetContext(c)
	return true
}

func (s *Server) closed(rc redcon.Conn, err error) {
	if c, ok := rc.Context().(*conn); ok {
		c.close()
	}
	if err != nil && !errors.Is(err, errRefused) && !errors.Is(err, net.ErrClosed) {
		s.cfg.Log.Debug().Err(err).Str("remote", rc.RemoteAddr()).Msg("RESP connection ended")
	}
	s.conns.Done()
}
