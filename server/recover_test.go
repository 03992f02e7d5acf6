package server

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// panicky is a data service whose Get and Scan panic, as a handler with a
// bug does.
type panicky struct {
	sluicev1.UnimplementedDataServer
}

func (panicky) Get(context.Context, *sluicev1.GetRequest) (*sluicev1.GetResponse, error) {
	var t *struct{ slots int32 }
	return &sluicev1.GetResponse{Version: uint64(t.slots)}, nil // nil dereference
}

func (panicky) Scan(*sluicev1.ScanRequest, grpc.ServerStreamingServer[sluicev1.ScanResponse]) error {
	panic("a bug in a stream")
}

// syncBuffer is a log that handlers write from their goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Issue 22.1: a panic in a handler, unary or streaming, is answered
// INTERNAL, logged with its stack and counted; the node (here the test
// process) goes on serving.
func TestHandlerPanicIsRecovered(t *testing.T) {
	var log syncBuffer
	reg := prometheus.NewRegistry()
	s, h := NewGRPCServer(Port{Name: "data", Log: zerolog.New(&log), Metrics: reg})
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	sluicev1.RegisterDataServer(s, panicky{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	dc := sluicev1.NewDataClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for range 2 {
		_, err := dc.Get(ctx, &sluicev1.GetRequest{Key: []byte("k")})
		if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "/sluice.v1.Data/Get") {
			t.Fatalf("Get whose handler panics: %v, want INTERNAL naming the method", err)
		}
	}
	stream, err := dc.Scan(ctx, &sluicev1.ScanRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Internal {
		t.Fatalf("Scan whose handler panics: %v, want INTERNAL", err)
	}
	// Still serving.
	if resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health after the panics: %v, %v", resp, err)
	}
	if got := panicCounts(t, reg); got["data /sluice.v1.Data/Get"] != 2 || got["data /sluice.v1.Data/Scan"] != 1 || len(got) != 2 {
		t.Errorf("sluice_grpc_panics_total = %v, want 2 for Get and 1 for Scan", got)
	}
	// The log has each panic with the stack that leads to it.
	logged := log.String()
	for _, want := range []string{"nil pointer dereference", "a bug in a stream", "recover_test.go", "panicky"} {
		if !strings.Contains(logged, want) {
			t.Errorf("the log does not name %q:\n%s", want, logged)
		}
	}
}

// panicCounts reads sluice_grpc_panics_total from reg: "port method" → count.
func panicCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_grpc_panics_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var port, method string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "port":
					port = l.GetValue()
				case "method":
					method = l.GetValue()
				}
			}
			out[port+" "+method] = m.GetCounter().GetValue()
		}
	}
	return out
}
