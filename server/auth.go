package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// HealthService is gRPC health's service name: load balancers and
// orchestrators probe it without credentials.
const HealthService = "grpc.health.v1.Health"

// ReflectionService and ReflectionServiceV1Alpha are gRPC reflection's
// service names (grpcurl list).
const (
	ReflectionService        = "grpc.reflection.v1.ServerReflection"
	ReflectionServiceV1Alpha = "grpc.reflection.v1alpha.ServerReflection"
)

// RequireToken returns interceptors, for unary and streaming calls alike,
// that refuse every call without "authorization: Bearer <token>" with
// Unauthenticated, except calls to the services named in open. plane names
// the port in the error ("control plane", "data plane"). The comparison takes
// constant time (of SHA-256 digests, so not even the token's length leaks);
// the token is never logged.
func RequireToken(plane, token string, open ...string) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	want := sha256.Sum256([]byte("Bearer " + token))
	check := func(ctx context.Context, method string) error {
		for _, svc := range open {
			if strings.HasPrefix(method, "/"+svc+"/") {
				return nil
			}
		}
		md, _ := metadata.FromIncomingContext(ctx)
		got := md.Get("authorization")
		if len(got) == 1 {
			h := sha256.Sum256([]byte(strings.TrimSpace(got[0])))
			if subtle.ConstantTimeCompare(h[:], want[:]) == 1 {
				return nil
			}
		}
		return status.Error(codes.Unauthenticated, plane+": a valid bearer token is required (authorization: Bearer <token>)")
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
	return unary, stream
}

// RateLimit returns interceptors, unary and streaming, that share one budget
// of perSecond calls a second (bursts of burst) and answer ResourceExhausted
// with a NotApplied detail beyond it: the call did nothing, retry later.
func RateLimit(perSecond float64, burst int) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	lim := rate.NewLimiter(rate.Limit(perSecond), burst)
	check := func() error {
		if lim.Allow() {
			return nil
		}
		return notApplied(codes.ResourceExhausted, fmt.Sprintf("control plane: rate limit of %g calls a second exceeded; retry later", perSecond))
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := check(); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := check(); err != nil {
			return err
		}
		return handler(srv, ss)
	}
	return unary, stream
}

// BearerToken is a client credential that sends a bearer token; it works
// over plaintext connections too (the ports' TLS is optional).
type BearerToken string

func (t BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (BearerToken) RequireTransportSecurity() bool { return false }

// String keeps the token out of logs and %v.
func (t BearerToken) String() string { return fmt.Sprintf("BearerToken(%d bytes)", len(t)) }
