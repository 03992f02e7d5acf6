package server

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// RequireReady returns interceptors, unary and streaming, that answer every
// call with UNAVAILABLE and a NotApplied detail while ready returns an error
// (the node has no routing table yet, say), except calls to the services
// named in open (health, reflection). The error's text is the answer's: say
// what is missing and that it is temporary.
func RequireReady(ready func() error, open ...string) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	check := func(method string) error {
		for _, svc := range open {
			if strings.HasPrefix(method, "/"+svc+"/") {
				return nil
			}
		}
		if err := ready(); err != nil {
			return notApplied(codes.Unavailable, err.Error())
		}
		return nil
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := check(info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := check(info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
	return unary, stream
}
