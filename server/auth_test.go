package server

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// serve starts a port with p's settings on loopback and returns a client
// connection to it, sending token if set.
func serve(t *testing.T, p Port, token string) *grpc.ClientConn {
	t.Helper()
	p.Log, p.Metrics = zerolog.Nop(), prometheus.NewRegistry()
	s, h := NewGRPCServer(p)
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	// A data service whose every method is Unimplemented: calls reach it
	// only through the interceptors (an unknown service would not).
	sluicev1.RegisterDataServer(s, sluicev1.UnimplementedDataServer{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(BearerToken(token)))
	}
	cc, err := grpc.NewClient(ln.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// listServices is `grpcurl list`: a reflection stream.
func listServices(cc *grpc.ClientConn) error {
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(context.Background())
	if err != nil {
		return err
	}
	// A stream the server already refused fails Send with io.EOF; its
	// status comes from Recv (grpc's ClientStream.SendMsg contract).
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_, err = stream.Recv()
	return err
}

// A token protects unary and streaming calls alike; services named open
// (health) answer without one.
func TestRequireTokenCoversStreams(t *testing.T) {
	u, s := RequireToken("data plane", "s3cret", HealthService)
	p := Port{Unary: []grpc.UnaryServerInterceptor{u}, Stream: []grpc.StreamServerInterceptor{s}}
	for _, tc := range []struct {
		token string
		want  codes.Code
	}{{"", codes.Unauthenticated}, {"wrong", codes.Unauthenticated}, {"s3cre", codes.Unauthenticated}, {"s3cret", codes.OK}} {
		cc := serve(t, p, tc.token)
		if err := listServices(cc); status.Code(err) != tc.want {
			t.Errorf("reflection stream with token %q: %v, want %v", tc.token, err, tc.want)
		}
		_, err := sluicev1.NewDataClient(cc).GetRoutes(context.Background(), &sluicev1.GetRoutesRequest{})
		if want := tc.want; want == codes.OK {
			want = codes.Unimplemented // authenticated; the stub data service answers
			if status.Code(err) != want {
				t.Errorf("unary call with token %q: %v, want %v", tc.token, err, want)
			}
		} else if status.Code(err) != want {
			t.Errorf("unary call with token %q: %v, want %v", tc.token, err, want)
		}
		if _, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health with token %q: %v, want it open", tc.token, err)
		}
	}
}

// The rate limit says the call did nothing: NotApplied, so clients retry.
func TestRateLimitIsNotApplied(t *testing.T) {
	u, s := RateLimit(0.001, 1)
	cc := serve(t, Port{Unary: []grpc.UnaryServerInterceptor{u}, Stream: []grpc.StreamServerInterceptor{s}}, "")
	h := healthpb.NewHealthClient(cc)
	if _, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{})
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || len(st.Details()) != 2 {
		t.Fatalf("over the rate: %v %v, want ResourceExhausted with NotApplied", st.Code(), st.Details())
	}
	if _, ok := st.Details()[0].(*sluicev1.NotApplied); !ok {
		t.Fatalf("detail %T", st.Details()[0])
	}
	if err := listServices(cc); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a stream over the rate: %v", err)
	}
}

// Issue 28.5: four control commands in a row failed the last three; read-only
// calls spend a budget of their own and a refusal says when to retry.
func TestRateLimitReadsDoNotSpendTheWriteBudget(t *testing.T) {
	u, _ := RateLimit(0.001, 1)
	call := func(method string) error {
		_, err := u(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) { return nil, nil })
		return err
	}
	if err := call(sluicev1.Control_AddPartition_FullMethodName); err != nil {
		t.Fatal(err)
	}
	for i := range ReadRateFactor {
		if err := call(sluicev1.Control_ListPartitions_FullMethodName); err != nil {
			t.Fatalf("read %d after the write budget was spent: %v", i, err)
		}
	}
	st := status.Convert(call(sluicev1.Control_MovePartition_FullMethodName))
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("a second write: %v", st.Err())
	}
	var hint *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			hint = ri
		}
	}
	if hint == nil || hint.RetryDelay.AsDuration() <= 0 {
		t.Fatalf("no retry hint in %v", st.Details())
	}
}
