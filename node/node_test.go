package node

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

type testNode struct {
	*Node
	data sluicev1.DataClient
	conn *grpc.ClientConn
}

// startNode starts a node for one test (closed when it ends) and waits,
// with a generous deadline, until it serves.
func startNode(t testing.TB, cfg Config) *testNode {
	t.Helper()
	if cfg.Brokers == nil {
		cfg.Brokers = kafkatest.Brokers(t)
	}
	if cfg.Cluster == "" {
		cfg.Cluster = kafkatest.ClusterName(t)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Log.GetLevel() == zerolog.DebugLevel { // the zero logger: log through the test
		cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	}
	n := openNode(t, cfg)
	t.Cleanup(func() { n.conn.Close(); n.Close() })
	return n
}

// openNode starts a node on local ports, waits until it serves (60 s at
// most) and dials its data port. The caller closes it.
func openNode(t testing.TB, cfg Config) *testNode {
	t.Helper()
	cfg.DataAddr, cfg.ControlAddr, cfg.ControlToken = "127.0.0.1:0", "127.0.0.1:0", "test-token"
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "-"
	}
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !n.Ready() {
		if time.Now().After(deadline) {
			n.Close()
			t.Fatal("node not ready in 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient(n.DataAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	return &testNode{Node: n, data: sluicev1.NewDataClient(conn), conn: conn}
}

func upsert(kv ...string) *sluicev1.UpsertRequest {
	req := &sluicev1.UpsertRequest{}
	for i := 0; i < len(kv); i += 2 {
		req.Entries = append(req.Entries, &sluicev1.Entry{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return req
}

// rawCodec sends bytes as they are, under the name of the proto codec, so the
// server decodes them as protobuf.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { return nil }
func (rawCodec) Name() string                       { return "proto" }

// badCase is a bad request and the code and message it must get.
type badCase struct {
	name string
	call func() error
	code codes.Code
	want string
}

// badInput is the bad input every storage mode refuses alike, each request
// naming key or nothing; none may change key.
func badInput(ctx context.Context, n *testNode, key string) []badCase {
	withHint := func(req *sluicev1.UpsertRequest, id uint32) *sluicev1.UpsertRequest { req.Partition = &id; return req }
	return []badCase{
		{"upsert no entries", func() error { _, err := n.data.Upsert(ctx, &sluicev1.UpsertRequest{}); return err }, codes.InvalidArgument, "no entries"},
		{"upsert empty key", func() error { _, err := n.data.Upsert(ctx, upsert(key, "v", "", "v")); return err }, codes.InvalidArgument, "empty key"},
		{"upsert key over 4 KiB", func() error {
			_, err := n.data.Upsert(ctx, upsert(key, "v", strings.Repeat("k", 4097), "v"))
			return err
		}, codes.InvalidArgument, "limit of 4096 bytes"},
		{"upsert batch over 1 MiB", func() error {
			_, err := n.data.Upsert(ctx, upsert(key, strings.Repeat("x", kv.MaxBatchBytes)))
			return err
		}, codes.InvalidArgument, "limit of 1048576 bytes"},
		{"upsert batch of 2 MiB", func() error { _, err := n.data.Upsert(ctx, upsert(key, strings.Repeat("x", 2<<20))); return err }, codes.InvalidArgument, "limit of 1048576 bytes"},
		{"upsert over the transport limit", func() error { _, err := n.data.Upsert(ctx, upsert(key, strings.Repeat("x", 9<<20))); return err }, codes.ResourceExhausted, "larger than max"},
		{"get empty key", func() error { _, err := n.data.Get(ctx, &sluicev1.GetRequest{}); return err }, codes.InvalidArgument, "empty key"},
		{"get key over 4 KiB", func() error {
			_, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: bytes.Repeat([]byte("k"), 4097)})
			return err
		}, codes.InvalidArgument, "limit of 4096 bytes"},
		{"remove empty key", func() error { _, err := n.data.Remove(ctx, &sluicev1.RemoveRequest{}); return err }, codes.InvalidArgument, "empty key"},
		{"reserved key", func() error { _, err := n.data.Upsert(ctx, upsert("\x00k", "v")); return err }, codes.InvalidArgument, "reserved for sluice"},
		{"unknown partition", func() error { _, err := n.data.Upsert(ctx, withHint(upsert(key, "v"), 99)); return err }, codes.InvalidArgument, "unknown partition 99"},
		{"malformed request", func() error {
			return n.conn.Invoke(ctx, "/sluice.v1.Data/Upsert", []byte{0x0a, 0xff, 0xff}, new([]byte), grpc.ForceCodecV2(nil), grpc.ForceCodec(rawCodec{}))
		}, codes.InvalidArgument, "malformed request"},
	}
}

// refusedAlike runs cases and checks each one's code and message, and that
// key was not written.
func refusedAlike(t *testing.T, ctx context.Context, n *testNode, key string, cases []badCase) {
	t.Helper()
	for _, tc := range cases {
		st := status.Convert(tc.call())
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.want) {
			t.Errorf("%s: got %v %q, want %v containing %q", tc.name, st.Code(), st.Message(), tc.code, tc.want)
		}
	}
	if got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)}); err != nil || got.Found {
		t.Fatalf("a rejected request changed state: %+v %v", got, err)
	}
}

// Every bad request gets a clear code and message, and changes nothing.
func TestBadInputGetsClearErrorAndChangesNothing(t *testing.T) {
	n := startNode(t, Config{Partitions: 4})
	ctx := context.Background()
	key := "good-key"
	slot, owner, _ := n.table.Load().Lookup([]byte(key))
	wrong := owner.ID%4 + 1
	withHint := func(req *sluicev1.UpsertRequest, id uint32) *sluicev1.UpsertRequest { req.Partition = &id; return req }
	refusedAlike(t, ctx, n, key, append(badInput(ctx, n, key),
		badCase{"get unknown partition", func() error {
			id := uint32(99)
			_, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key), Partition: &id})
			return err
		}, codes.InvalidArgument, "unknown partition 99"},
		badCase{"key outside the named partition", func() error { _, err := n.data.Upsert(ctx, withHint(upsert(key, "v"), wrong)); return err }, codes.FailedPrecondition, fmt.Sprintf("slot %d is owned by partition %d", slot, owner.ID)},
	))
	// BadNode names the owner so a client can go there.
	_, err := n.data.Upsert(ctx, withHint(upsert(key, "v"), wrong))
	var bn *sluicev1.BadNode
	for _, d := range status.Convert(err).Details() {
		bn, _ = d.(*sluicev1.BadNode)
	}
	if bn == nil || bn.Partition != owner.ID || bn.Slot != slot || bn.Addr != n.DataAddr() || bn.Node != "n1" {
		t.Fatalf("BadNode detail = %+v", bn)
	}
	// Nothing of any of it was applied.
	if got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)}); err != nil || got.Found {
		t.Fatalf("a rejected request changed state: %+v %v", got, err)
	}
}

func TestGetIsLinearizableAfterWrite(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte(fmt.Sprintf("client-%d", c))
			for i := 1; i <= 30; i++ {
				val := []byte(fmt.Sprint(i))
				res, err := n.data.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: key, Value: val}}})
				if err != nil {
					errs <- err
					return
				}
				got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: key})
				if err != nil || !got.Found || !bytes.Equal(got.Value, val) || got.Version != res.Results[0].Version || got.Version != uint64(i) {
					errs <- fmt.Errorf("%s: wrote %s (version %d), read %+v %v", key, val, res.Results[0].Version, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Concurrent clients writing one key: every ack carries a distinct version,
// versions are gapless, and the changelog order (offsets) is the version order.
func TestAcksOrderedUnderConcurrentClients(t *testing.T) {
	n := startNode(t, Config{Partitions: 1})
	ctx := context.Background()
	const clients, each = 16, 25
	type ack struct {
		version uint64
		offset  int64
	}
	acks := make(chan ack, clients*each)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := ack{offset: -1}
			for i := 0; i < each; i++ {
				res, err := n.data.Upsert(ctx, upsert("hot", fmt.Sprint(c, "-", i), fmt.Sprint("side-", c), "x"))
				if err != nil {
					t.Error(err)
					return
				}
				a := ack{res.Results[0].Version, res.Results[0].Offset}
				if a.version <= last.version || a.offset <= last.offset {
					t.Errorf("client %d: ack %+v after %+v", c, a, last)
				}
				last = a
				acks <- a
			}
		}()
	}
	wg.Wait()
	close(acks)
	byVersion := make(map[uint64]int64)
	for a := range acks {
		if _, dup := byVersion[a.version]; dup {
			t.Fatalf("version %d acknowledged twice", a.version)
		}
		byVersion[a.version] = a.offset
	}
	for v := uint64(2); v <= clients*each; v++ {
		if byVersion[v] <= byVersion[v-1] {
			t.Fatalf("version %d at offset %d, version %d at offset %d: log order differs from version order", v-1, byVersion[v-1], v, byVersion[v])
		}
	}
	got, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte("hot")})
	if err != nil || got.Version != clients*each {
		t.Fatalf("final version %d, %v", got.GetVersion(), err)
	}
}

func dump(t *testing.T, n *testNode, keys []string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, k := range keys {
		got, err := n.data.Get(context.Background(), &sluicev1.GetRequest{Key: []byte(k)})
		if err != nil {
			t.Fatal(err)
		}
		if got.Found {
			out[k] = string(got.Value)
		}
	}
	return out
}

// A restart on the same disk replays only the tail; a node on an empty disk
// rebuilds everything from the changelog. Both end with the same state.
func TestRestartRecovers(t *testing.T) {
	dir := t.TempDir()
	cluster := kafkatest.ClusterName(t)
	n := startNode(t, Config{DataDir: dir, Cluster: cluster})
	ctx := context.Background()
	var keys []string
	for i := 0; i < 200; i++ {
		keys = append(keys, fmt.Sprint("key-", i))
	}
	for i := 0; i < 200; i += 10 {
		req := &sluicev1.UpsertRequest{}
		for _, k := range keys[i : i+10] {
			req.Entries = append(req.Entries, &sluicev1.Entry{Key: []byte(k), Value: []byte("v-" + k)})
		}
		if _, err := n.data.Upsert(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys[:20] {
		if _, err := n.data.Remove(ctx, &sluicev1.RemoveRequest{Key: []byte(k)}); err != nil {
			t.Fatal(err)
		}
	}
	want := dump(t, n, keys)
	if len(want) != 180 {
		t.Fatalf("%d keys before restart, want 180", len(want))
	}
	n.Close()

	same := startNode(t, Config{DataDir: dir, Cluster: cluster})
	if got := dump(t, same, keys); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after restart on the same disk: %d keys, want %d", len(got), len(want))
	}
	same.Close()
	fresh := startNode(t, Config{Cluster: cluster})
	if got := dump(t, fresh, keys); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rebuilt from the changelog: %d keys, want %d", len(got), len(want))
	}
}

func TestHealthAndReflection(t *testing.T) {
	n := startNode(t, Config{})
	ctx := context.Background()
	h := healthpb.NewHealthClient(n.conn)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{Service: "sluice.v1.Data"})
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health: %v %v", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every slot is routed to one of the node's partitions.
	tb := n.table.Load()
	for s := int32(0); s < tb.Slots(); s++ {
		if p, ok := tb.BySlot(s); !ok || !p.Range.Contains(s) || p.Node != "n1" {
			t.Fatalf("slot %d routed to %+v", s, p)
		}
	}
	if tb.Slots() != keyspace.DefaultSlots {
		t.Fatalf("%d slots", tb.Slots())
	}
	// Reflection lists the data service, so grpcurl works.
	stream, err := reflectionpb.NewServerReflectionClient(n.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "sluice.v1.Data") {
		t.Fatalf("reflection lists %v", names)
	}
}
