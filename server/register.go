package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// RegisterData registers the data service.
func RegisterData(s *grpc.Server, d *Data) { register(s, sluicev1.Data_ServiceDesc, d) }

// RegisterControl registers the control service.
func RegisterControl(s *grpc.Server, c *Control) { register(s, sluicev1.Control_ServiceDesc, c) }

// register registers a service whose methods answer a request that does not
// decode with InvalidArgument (grpc-go's own answer is Internal, which would
// blame the server for the client's bytes).
func register(s *grpc.Server, desc grpc.ServiceDesc, impl any) {
	desc.Methods = append([]grpc.MethodDesc(nil), desc.Methods...)
	for i := range desc.Methods {
		h := desc.Methods[i].Handler
		desc.Methods[i].Handler = func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			return h(srv, ctx, func(v any) error {
				if err := dec(v); err != nil {
					return status.Error(codes.InvalidArgument, "malformed request: "+status.Convert(err).Message())
				}
				return nil
			}, ic)
		}
	}
	s.RegisterService(&desc, impl)
}
