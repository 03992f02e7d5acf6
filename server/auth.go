package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
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
	return gate(check)
}

// RateLimit returns interceptors, unary and streaming, that share one budget
// of perSecond calls a second (bursts of burst) and answer ResourceExhausted
// beyond it, with a NotApplied detail (the call did nothing) and a RetryInfo
// saying when the budget has room again. The control plane's read-only calls
// (ListPartitions, GetOperation, NodeStatus) have a budget of their own,
// ReadRateFactor times larger: a script that lists partitions in a loop
// does not starve the writes.
func RateLimit(perSecond float64, burst int) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	writes := rate.NewLimiter(rate.Limit(perSecond), burst)
	reads := rate.NewLimiter(rate.Limit(perSecond*ReadRateFactor), burst*ReadRateFactor)
	check := func(_ context.Context, method string) error {
		lim, what := writes, "calls"
		if readOnlyControl[method[strings.LastIndexByte(method, '/')+1:]] && strings.Contains(method, ".Control/") {
			lim, what = reads, "read-only calls"
		}
		r := lim.Reserve()
		wait := r.Delay()
		if wait == 0 {
			return nil
		}
		r.Cancel()
		st := status.New(codes.ResourceExhausted, fmt.Sprintf("control plane: rate limit of %g %s a second exceeded (--control-rate); retry in %s",
			float64(lim.Limit()), what, wait.Round(time.Millisecond)))
		if d, err := st.WithDetails(&sluicev1.NotApplied{}, &errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}); err == nil {
			st = d
		}
		return st.Err()
	}
	return gate(check)
}

// ReadRateFactor is how many times the write budget the control plane's
// read-only calls have (RateLimit).
const ReadRateFactor = 10

// readOnlyControl are the control plane's methods that change nothing.
var readOnlyControl = map[string]bool{"ListPartitions": true, "GetOperation": true, "NodeStatus": true}

// BearerToken is a client credential that sends a bearer token; it works
// over plaintext connections too (the ports' TLS is optional).
type BearerToken string

func (t BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (BearerToken) RequireTransportSecurity() bool { return false }

// String keeps the token out of logs and %v.
func (t BearerToken) String() string { return fmt.Sprintf("BearerToken(%d bytes)", len(t)) }
