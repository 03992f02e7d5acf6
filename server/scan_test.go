package server_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/pagetoken"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// scanAll reads a Scan stream to its end.
func scanAll(t *testing.T, n *testNode, req *sluicev1.ScanRequest) (keys []string, msgs []*sluicev1.ScanResponse) {
	t.Helper()
	st, err := n.data.Scan(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return keys, msgs
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
		for _, e := range m.Entries {
			keys = append(keys, string(e.Key))
		}
	}
}

// A scan merges the node's partitions in key order, however the keys hash
// over slots; a limit stops it with a page token that resumes right after.
func TestScanMergesPartitionsInKeyOrder(t *testing.T) {
	n := startNode(t)
	put(t, n, "a", 50)
	put(t, n, "b", 700)
	put(t, n, "c", 50)
	if _, err := n.cl.Remove(context.Background(), []byte("b-100")); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 700 {
		if i != 100 {
			want = append(want, fmt.Sprintf("b-%03d", i))
		}
	}
	keys, msgs := scanAll(t, n, &sluicev1.ScanRequest{Prefix: []byte("b-")})
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("scan of b-: %d keys, first %v", len(keys), keys[:min(5, len(keys))])
	}
	if len(msgs[0].Partitions) != 4 || msgs[len(msgs)-1].More {
		t.Fatalf("first message names partitions %v, last says more=%v", msgs[0].Partitions, msgs[len(msgs)-1].More)
	}
	if len(msgs) < 2 {
		t.Fatalf("699 keys came in %d message(s): want chunks of at most 512", len(msgs))
	}
	e := msgs[0].Entries[0]
	if string(e.Value) != "value-000" || e.Version != 1 || e.Timestamp == 0 {
		t.Fatalf("first entry %+v", e)
	}
	// Pages of 100: each resumes after the last key of the one before.
	var paged []string
	var token []byte
	for page := 0; ; page++ {
		keys, msgs := scanAll(t, n, &sluicev1.ScanRequest{Prefix: []byte("b-"), Limit: 100, PageToken: token, Consistency: sluicev1.Consistency_EVENTUAL})
		paged = append(paged, keys...)
		last := msgs[len(msgs)-1]
		if !last.More {
			break
		}
		if len(keys) != 100 {
			t.Fatalf("page %d has %d keys and says more", page, len(keys))
		}
		token = last.PageToken
	}
	if strings.Join(paged, " ") != strings.Join(want, " ") {
		t.Fatalf("pages joined: %d keys", len(paged))
	}
	// A range; the Go client's pages.
	keys, _ = scanAll(t, n, &sluicev1.ScanRequest{Start: []byte("a-048"), End: []byte("b-002")})
	if strings.Join(keys, " ") != "a-048 a-049 b-000 b-001" {
		t.Fatalf("range scan: %v", keys)
	}
	page, next, err := n.cl.ScanPage(context.Background(), client.ScanOptions{Start: []byte("c-"), Limit: 30})
	if err != nil || len(page) != 30 || string(page[29].Key) != "c-029" || next == nil {
		t.Fatalf("client page: %d keys, next %x, %v", len(page), next, err)
	}
	page, next, err = n.cl.ScanPage(context.Background(), client.ScanOptions{Start: []byte("c-"), Limit: 30, PageToken: next})
	if err != nil || len(page) != 20 || string(page[0].Key) != "c-030" || next != nil {
		t.Fatalf("client's second page: %d keys, next %x, %v", len(page), next, err)
	}
}

// A linearizable scan sees every write acknowledged before it started:
// each partition's part reads the store only after a no-op through the
// partition's inbox, by when the loop has applied every committed group.
func TestLinearizableScanSeesAcknowledgedWrites(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	for i := range 100 {
		k := fmt.Appendf(nil, "lin-%03d", i)
		if _, err := n.cl.Upsert(ctx, client.Entry{Key: k, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		page, _, err := n.cl.ScanPage(ctx, client.ScanOptions{Prefix: []byte("lin-")})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != i+1 || string(page[i].Key) != string(k) {
			t.Fatalf("after %d acknowledged writes the scan saw %d keys", i+1, len(page))
		}
	}
}

// Bad input is INVALID_ARGUMENT naming what is wrong: nothing to scan, a
// prefix and a range, an inverted range, forged tokens, a token of another
// cluster or another scan.
func TestScanBadInput(t *testing.T) {
	n := startNode(t)
	put(t, n, "p", 20)
	_, msgs := scanAll(t, n, &sluicev1.ScanRequest{Prefix: []byte("p-"), Limit: 5})
	good := msgs[len(msgs)-1].PageToken
	t1, err := pagetoken.Decode(good)
	if err != nil {
		t.Fatal(err)
	}
	other := t1
	other.Cluster = "another/cluster"
	forged := append([]byte(nil), good...)
	forged[len(forged)/2] ^= 1
	for _, tc := range []struct {
		name string
		req  *sluicev1.ScanRequest
		want string
	}{
		{"nothing named", &sluicev1.ScanRequest{}, "needs a prefix or a range"},
		{"prefix and range", &sluicev1.ScanRequest{Prefix: []byte("p"), Start: []byte("a")}, "a prefix or a range [start, end), not both"},
		{"end before start", &sluicev1.ScanRequest{Start: []byte("b"), End: []byte("a")}, "must be after start"},
		{"prefix over 4 KiB", &sluicev1.ScanRequest{Prefix: make([]byte, 5000)}, "prefix of 5000 bytes is over the limit of 4096 bytes"},
		{"forged token", &sluicev1.ScanRequest{Prefix: []byte("p-"), PageToken: forged}, "checksum does not match"},
		{"garbage token", &sluicev1.ScanRequest{Prefix: []byte("p-"), PageToken: []byte("hello")}, "page token: pagetoken: malformed"},
		{"token of another cluster", &sluicev1.ScanRequest{Prefix: []byte("p-"), PageToken: pagetoken.Encode(other)}, `made by cluster "another/cluster"`},
		{"token of another scan", &sluicev1.ScanRequest{Prefix: []byte("q-"), PageToken: good}, "made for another prefix or range"},
		{"unknown level", &sluicev1.ScanRequest{Prefix: []byte("p-"), Consistency: 9}, "unknown consistency level 9"},
		{"unknown partition", &sluicev1.ScanRequest{Prefix: []byte("p-"), Partitions: []uint32{99}}, "unknown partition 99"},
	} {
		st, err := n.data.Scan(context.Background(), tc.req)
		if err == nil {
			_, err = st.Recv()
		}
		if s := status.Convert(err); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), tc.want) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT with %q", tc.name, err, tc.want)
		}
	}
	// The good token resumes.
	keys, _ := scanAll(t, n, &sluicev1.ScanRequest{Prefix: []byte("p-"), PageToken: good})
	if len(keys) != 15 || keys[0] != "p-005" {
		t.Fatalf("resumed scan: %v", keys)
	}
}

// A partition removed (its store closed) while a scan streams it: the scan
// either finishes from its read transaction or fails; the node goes on.
func TestScanOutlivesItsPartition(t *testing.T) {
	n := startNode(t)
	for i := range 10 { // ~5,000 keys in partition 1: more than a small window holds
		put(t, n, fmt.Sprint("r", i), 900)
	}
	conn, err := grpc.NewClient(n.ControlAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(server.BearerToken("test-token")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dataConn, err := grpc.NewClient(n.DataAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer dataConn.Close()
	var st grpc.ServerStreamingClient[sluicev1.ScanResponse]
	// A client with gRPC's smallest window, so the node is mid-iteration.
	st, err = sluicev1.NewDataClient(dataConn).Scan(context.Background(), &sluicev1.ScanRequest{Prefix: []byte("r"), Partitions: []uint32{1}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	id := uint32(1)
	if _, err := sluicev1.NewControlClient(conn).RemovePartition(context.Background(), &sluicev1.RemovePartitionRequest{Id: &id}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for held := true; held; {
		held = false
		for _, p := range n.LocalStatus() {
			held = held || p.Id == 1
		}
		if time.Now().After(deadline) {
			t.Fatal("partition 1 still open 30 s after its removal")
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := len(first.Entries)
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Logf("the scan ended with %v after %d keys", err, got)
			break
		}
		got += len(m.Entries)
	}
	t.Logf("%d keys of partition 1 scanned across its removal (%d in the first message)", got, len(first.Entries))
	if _, err := n.cl.Upsert(context.Background(), client.Entry{Key: []byte("s-000"), Value: []byte("still serving")}); err != nil && status.Code(err) != codes.Unavailable {
		t.Fatalf("the node after the scan: %v", err)
	}
}
