package server

import (
	"context"
	"crypto/subtle"
	"fmt"
	"strings"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// RequireToken refuses every call without "authorization: Bearer <token>".
// The comparison takes constant time; the token is never logged.
func RequireToken(token string) grpc.UnaryServerInterceptor {
	want := []byte("Bearer " + token)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got := md.Get("authorization")
		if len(got) != 1 || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got[0])), want) != 1 {
			return nil, status.Error(codes.Unauthenticated, "control plane: a valid bearer token is required (authorization: Bearer <token>)")
		}
		return handler(ctx, req)
	}
}

// RateLimit answers ResourceExhausted beyond perSecond calls a second
// (bursts of burst).
func RateLimit(perSecond float64, burst int) grpc.UnaryServerInterceptor {
	lim := rate.NewLimiter(rate.Limit(perSecond), burst)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !lim.Allow() {
			return nil, status.Error(codes.ResourceExhausted, fmt.Sprintf("control plane: rate limit of %g calls a second exceeded; retry later", perSecond))
		}
		return handler(ctx, req)
	}
}

// BearerToken is a client credential that sends a bearer token; it works
// over plaintext connections too (the control port's TLS is optional).
type BearerToken string

func (t BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (BearerToken) RequireTransportSecurity() bool { return false }
