package node

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// dial connects to addr over plaintext, sending token if set.
func dial(t *testing.T, addr, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(server.BearerToken(token)))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// listServices is what `grpcurl ADDR list` does: a reflection stream.
func listServices(cc *grpc.ClientConn) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	// A stream the server already refused fails Send with io.EOF; its
	// status comes from Recv (grpc's ClientStream.SendMsg contract).
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	return names, nil
}

// Streaming calls on the control port need the token too: `grpcurl list`
// through reflection without one is refused.
func TestControlStreamsNeedTheToken(t *testing.T) {
	n := startNode(t, Config{})
	if names, err := listServices(dial(t, n.ControlAddr(), "")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("reflection on the control port without a token: %v %v, want Unauthenticated", names, err)
	}
	if _, err := listServices(dial(t, n.ControlAddr(), "wrong")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("reflection on the control port with a wrong token: %v, want Unauthenticated", err)
	}
	names, err := listServices(dial(t, n.ControlAddr(), "test-token"))
	if err != nil || !strings.Contains(strings.Join(names, ","), "sluice.v1.Control") {
		t.Fatalf("reflection with the token: %v %v", names, err)
	}
}

// The control port reads at most a small message before it checks the
// token: a larger one is refused unread.
func TestControlPortTakesOnlySmallMessages(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	_, err := sluicev1.NewControlClient(dial(t, n.ControlAddr(), "")).Snapshot(ctx,
		&sluicev1.SnapshotRequest{Partition: 1, Path: strings.Repeat("x", server.ControlMaxRecvMsgBytes)})
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "larger than max") {
		t.Fatalf("a %d-byte control request: %v, want ResourceExhausted larger than max", server.ControlMaxRecvMsgBytes, err)
	}
}

// With a data token every data call but health needs it, unary and streams
// alike; the Go client sends it with WithToken.
func TestDataToken(t *testing.T) {
	n := startNode(t, Config{DataToken: "data-s3cret"})
	ctx := context.Background()
	for _, token := range []string{"", "wrong", "test-token"} {
		cc := dial(t, n.DataAddr(), token)
		if _, err := sluicev1.NewDataClient(cc).Upsert(ctx, upsert("k", "v")); status.Code(err) != codes.Unauthenticated {
			t.Errorf("upsert with token %q: %v, want Unauthenticated", token, err)
		}
		if _, err := sluicev1.NewDataClient(cc).Get(ctx, &sluicev1.GetRequest{Key: []byte("k")}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("get with token %q: %v, want Unauthenticated", token, err)
		}
		if _, err := listServices(cc); status.Code(err) != codes.Unauthenticated {
			t.Errorf("reflection with token %q: %v, want Unauthenticated", token, err)
		}
		if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health with token %q: %v, want it open", token, err)
		}
	}
	without, _ := client.New(n.DataAddr())
	defer without.Close()
	if _, err := without.Upsert(ctx, client.Entry{Key: []byte("k"), Value: []byte("v")}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("client without the token: %v, want Unauthenticated", err)
	}
	c, _ := client.Dial([]string{n.DataAddr()}, client.WithToken("data-s3cret"))
	defer c.Close()
	if _, err := c.Upsert(ctx, client.Entry{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("client with the token: %v", err)
	}
	if v, found, err := c.Get(ctx, []byte("k")); err != nil || !found || string(v.Data) != "v" {
		t.Fatalf("get with the token: %q %v %v", v.Data, found, err)
	}
}

// With --data-client-ca the data port takes only clients with a certificate
// that CA signed.
func TestDataClientCertificates(t *testing.T) {
	pki, _, _ := newPKI(t, t.TempDir(), "node")
	n := startNode(t, pki.nodeTLS(t, true, false))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	anonymous, _ := client.Dial([]string{n.DataAddr()}, client.WithTLS(pki.clientTLS(t, false)), client.WithMaxAttempts(1))
	defer anonymous.Close()
	if _, err := anonymous.Upsert(ctx, client.Entry{Key: []byte("k"), Value: []byte("v")}); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	c, _ := client.Dial([]string{n.DataAddr()}, client.WithTLS(pki.clientTLS(t, true)))
	defer c.Close()
	if _, err := c.Upsert(ctx, client.Entry{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("a client with a certificate: %v", err)
	}
}

// A request over the data port's size limit would get grpc-go's own
// ResourceExhausted, which says nothing about retrying; the Go client
// refuses it first with InvalidArgument naming the limit, and sends nothing.
func TestClientRefusesOversizedRequests(t *testing.T) {
	n := startNode(t, Config{})
	c, _ := client.New(n.DataAddr())
	defer c.Close()
	_, err := c.Upsert(context.Background(), client.Entry{Key: []byte("big"), Value: make([]byte, client.MaxRequestBytes)})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "limit of 8388608 bytes") {
		t.Fatalf("an oversized upsert: %v, want InvalidArgument naming the 8 MiB limit", err)
	}
	// The node's own answer carries no NotApplied detail: nothing tells a
	// client to retry it.
	_, err = n.data.Upsert(context.Background(), upsert("big", strings.Repeat("x", server.MaxRecvMsgBytes)))
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || len(st.Details()) != 0 {
		t.Fatalf("the node's answer to an oversized request: %v %v", st.Code(), st.Details())
	}
}

// maxStreams reads the SETTINGS_MAX_CONCURRENT_STREAMS a gRPC port announces.
func maxStreams(t *testing.T, addr string) uint32 {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			v, _ := sf.Value(http2.SettingMaxConcurrentStreams)
			return v
		}
	}
}

func TestMaxConcurrentStreams(t *testing.T) {
	n := startNode(t, Config{DataMaxStreams: 100})
	if got := maxStreams(t, n.DataAddr()); got != 100 {
		t.Errorf("data port: %d concurrent streams, want 100", got)
	}
	if got := maxStreams(t, n.ControlAddr()); got != server.DefaultControlMaxConcurrentStreams {
		t.Errorf("control port: %d concurrent streams, want %d", got, server.DefaultControlMaxConcurrentStreams)
	}
}

// Nothing listens beyond loopback unless named, and pprof is off unless asked.
func TestDefaultsExposeNothing(t *testing.T) {
	cfg := Config{ControlToken: "t", DataDir: t.TempDir()}
	if err := cfg.setDefaults(); err != nil {
		t.Fatal(err)
	}
	for what, addr := range map[string]string{"data": cfg.DataAddr, "control": cfg.ControlAddr, "http": cfg.HTTPAddr, "embedded kafka": cfg.EmbeddedKafkaAddr} {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("the default %s address %q is not loopback", what, addr)
		}
	}
	if cfg.Pprof != PprofOff {
		t.Errorf("pprof is %q by default", cfg.Pprof)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPprofOffByDefaultAndBounded(t *testing.T) {
	off := startNode(t, Config{HTTPAddr: "127.0.0.1:0"})
	if code, _ := get(t, "http://"+off.HTTPAddr()+"/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Errorf("pprof by default: %d, want 404", code)
	}
	if code, _ := get(t, "http://"+off.HTTPAddr()+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics: %d", code)
	}
	if s := off.httpSrv; s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.WriteTimeout == 0 || s.IdleTimeout == 0 {
		t.Errorf("HTTP timeouts unset: %+v", s)
	}

	on := startNode(t, Config{HTTPAddr: "127.0.0.1:0", Pprof: PprofLocal})
	if code, body := get(t, "http://"+on.HTTPAddr()+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof enabled: %d", code)
	}
	for _, q := range []string{"profile?seconds=61", "trace?seconds=3600", "heap?seconds=1000", "profile?seconds=-1"} {
		if code, _ := get(t, "http://"+on.HTTPAddr()+"/debug/pprof/"+q); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
	if on.httpSrv.WriteTimeout <= MaxProfileSeconds*time.Second {
		t.Errorf("write timeout %s refuses a %d s profile", on.httpSrv.WriteTimeout, MaxProfileSeconds)
	}

	// Local access refuses clients from other hosts; all serves them.
	for access, want := range map[PprofAccess]int{PprofLocal: http.StatusForbidden, PprofAll: http.StatusOK} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/debug/pprof/cmdline", nil)
		req.RemoteAddr = "192.0.2.7:41000"
		guardPprof(access, pprofMux()).ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("pprof %q to a remote client: %d, want %d", access, rec.Code, want)
		}
	}
}

// A peer whose advertised control address reaches this node is refused, not
// called round in circles: directly when the address is this node's own,
// and at the receiving end when it only reaches it (another spelling of the
// address, a NAT).
func TestSelfForwardIsRefused(t *testing.T) {
	n1 := startNode(t, Config{ControlRate: 1000}) // the test's calls, not the rate limit, are under test
	cluster := n1.cfg.Cluster
	_, port, _ := net.SplitHostPort(n1.ControlAddr())
	for _, tc := range []struct{ advertise, want string }{
		{n1.ControlAddr(), "which is this node's (n1) own"},
		{"localhost:" + port, "this is node n1, but a peer forwarded a call meant for node [n2]"},
	} {
		t.Run(tc.advertise, func(t *testing.T) {
			n2 := startNode(t, Config{Cluster: cluster, NodeID: "n2", AdvertiseControlAddr: tc.advertise})
			if n2.ControlAddr() != tc.advertise {
				t.Fatalf("n2 advertises %s, want %s", n2.ControlAddr(), tc.advertise)
			}
			ctl := sluicev1.NewControlClient(dial(t, n1.ControlAddr(), "test-token"))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := ctl.MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: 1, Node: "n2"}); err != nil {
				t.Fatal(err)
			}
			for n1.registry.View().Partitions[1].Owner != "n2" {
				if ctx.Err() != nil {
					t.Fatal("n1 never saw the move")
				}
				time.Sleep(20 * time.Millisecond)
			}
			_, err := ctl.Snapshot(ctx, &sluicev1.SnapshotRequest{Partition: 1, Path: t.TempDir()})
			if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), tc.want) ||
				!strings.Contains(st.Message(), "--advertise-control-addr") {
				t.Fatalf("snapshot forwarded to a misadvertised node: %v, want FailedPrecondition containing %q", err, tc.want)
			}
			if _, err := ctl.GetOperation(ctx, &sluicev1.GetOperationRequest{Id: "n2/1"}); status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("operation forwarded to a misadvertised node: %v", err)
			}
			// Give the partition back for the next case.
			if _, err := ctl.MovePartition(ctx, &sluicev1.MovePartitionRequest{Id: 1, Node: "n1"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
