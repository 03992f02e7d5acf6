package server

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NewPanics returns the counter of handler panics that a port recovered,
// by port ("data", "control") and method, registered on reg as
// sluice_grpc_panics_total. One counter serves every port of a node.
func NewPanics(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_grpc_panics_total",
		Help: "Panics in gRPC handlers, recovered and answered INTERNAL, by port and method (each one is a bug: its stack is in the log).",
	}, []string{"port", "method"})
	reg.MustRegister(c)
	return c
}

// recoverPanics returns interceptors that turn a panic in a call's handler
// (or in an interceptor after them) into an INTERNAL answer, logged with its
// stack and counted in panics: a bug in one request never kills the node.
// Only the handler's own goroutine is covered: a partition's goroutine is
// not, which is why nothing is served before the node is ready (ready.go).
func recoverPanics(log zerolog.Logger, port string, panics *prometheus.CounterVec) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	handle := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		method, _ := grpc.Method(ctx)
		panics.WithLabelValues(port, method).Inc()
		log.Error().Str("port", port).Str("method", method).Str("panic", fmt.Sprint(p)).Bytes("stack", debug.Stack()).
			Msg("a gRPC handler panicked: answered INTERNAL, the node goes on (a bug: please report it with this stack)")
		return status.Errorf(codes.Internal, "internal error serving %s (a panic, recovered and logged by the node)", method)
	})
	return recovery.UnaryServerInterceptor(handle), recovery.StreamServerInterceptor(handle)
}
