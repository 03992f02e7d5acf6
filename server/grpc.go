package server

import (
	"context"
	"strconv"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/kv"
)

// MaxRecvMsgBytes is the data port's default bound on one request. It lets
// batches somewhat over the 1 MiB limit reach validation, so they get
// InvalidArgument naming the limit. A request over it is refused by grpc-go
// itself, before any of sluice's code runs, with ResourceExhausted "received
// message larger than max" and no NotApplied detail: that answer is permanent
// (only ResourceExhausted with NotApplied means "retry later"), and the Go
// client refuses such a request before sending it.
const MaxRecvMsgBytes = 8 * kv.MaxBatchBytes

// ControlMaxRecvMsgBytes bounds a control-plane request. Control requests
// are a few hundred bytes, and the message is read before the token is
// checked: an unauthenticated caller can make the node hold no more than this.
const ControlMaxRecvMsgBytes = 64 << 10

// Default bounds on the calls in flight on one client connection. A client
// over the bound waits for a call to end (grpc-go queues it); it is not
// refused. With MaxRecvMsgBytes a connection holds at most streams × 8 MiB of
// requests being read.
const (
	DefaultMaxConcurrentStreams        = 256
	DefaultControlMaxConcurrentStreams = 16
)

// StreamWorkers is how many goroutines serve calls (each keeps its grown
// stack); calls beyond them in flight at once run on fresh goroutines.
const StreamWorkers = 64

// Port configures one gRPC port. Zero values take the defaults on each field.
type Port struct {
	Log zerolog.Logger
	// Metrics registers the port's request metrics. Required.
	Metrics prometheus.Registerer
	// MaxRecvMsgBytes bounds one request. Default MaxRecvMsgBytes.
	MaxRecvMsgBytes int
	// MaxConcurrentStreams bounds the calls in flight on one connection.
	// Default DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// Name names the port in the panics metric and in logs ("data",
	// "control"). Default "grpc".
	Name string
	// Panics counts the handler panics the port recovers (NewPanics).
	// Default: a counter registered on Metrics.
	Panics *prometheus.CounterVec
	// Unary and Stream interceptors run after metrics, logging and panic
	// recovery, in order (authentication, rate limits, readiness).
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
	// Options are added last (TLS credentials).
	Options []grpc.ServerOption
}

// NewGRPCServer returns a gRPC server with sluice's interceptors (metrics,
// logging of failures, recovery of panics, then the port's own), health and
// reflection. Register services, then Serve.
func NewGRPCServer(p Port) (*grpc.Server, *health.Server) {
	if p.MaxRecvMsgBytes == 0 {
		p.MaxRecvMsgBytes = MaxRecvMsgBytes
	}
	if p.MaxConcurrentStreams == 0 {
		p.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets(prometheus.ExponentialBuckets(0.0005, 2, 16))))
	p.Metrics.MustRegister(metrics)
	if p.Name == "" {
		p.Name = "grpc"
	}
	if p.Panics == nil {
		p.Panics = NewPanics(p.Metrics)
	}
	// Recovery runs inside metrics and logging: a recovered panic is counted
	// and logged as the INTERNAL it is answered with.
	recU, recS := recoverPanics(p.Log, p.Name, p.Panics)
	unary := append([]grpc.UnaryServerInterceptor{metrics.UnaryServerInterceptor(), logFailures(p.Log), recU}, p.Unary...)
	stream := append([]grpc.StreamServerInterceptor{metrics.StreamServerInterceptor(), logStreamFailures(p.Log), recS}, p.Stream...)
	opts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(p.MaxRecvMsgBytes),
		grpc.MaxConcurrentStreams(p.MaxConcurrentStreams),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		// Reuse goroutines for calls: a fresh goroutine per call grows its
		// stack anew through request decoding and every store read (12 %
		// of CPU under gets). A call goes to a fresh goroutine only when no
		// worker is idle, so there are enough for many concurrent calls.
		grpc.NumStreamWorkers(StreamWorkers),
		// Clients ping a connection that is silent while a call waits on
		// it (the Go client every 10 s: a node frozen with calls in
		// flight is noticed), which the default policy (5 min) answers
		// with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second}),
	}, p.Options...)
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	metrics.InitializeMetrics(s)
	return s, h
}

// logFailures logs every call that ends in a server-side error; client errors
// (bad input, routing, credentials) are logged at debug.
func logFailures(log zerolog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logFailure(log, info.FullMethod, start, err)
		return resp, err
	}
}

func logStreamFailures(log zerolog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		logFailure(log, info.FullMethod, start, err)
		return err
	}
}

func logFailure(log zerolog.Logger, method string, start time.Time, err error) {
	if err == nil {
		return
	}
	code := status.Code(err)
	ev := log.Debug()
	if code == codes.Internal || code == codes.Unknown {
		ev = log.Warn()
	}
	ev.Str("method", method).Str("code", code.String()).Dur("took", time.Since(start)).Err(err).Msg("call failed")
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
