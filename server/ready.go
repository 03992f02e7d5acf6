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
	check := func(_ context.Context, method string) error {
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
	return gate(check)
}
