package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/keyspace"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// GetMany and Scan over three nodes: the Go client splits a GetMany by owner
// and merges the nodes' scan streams in key order; a node asked for keys or
// partitions it does not serve names their owner, key by key for GetMany.
func TestReadSideAcrossNodes(t *testing.T) {
	c := startCluster(t)
	c.move(2, "n2")
	c.move(3, "n3")
	ctx := context.Background()
	cl, err := client.New(c.nodes["n1"].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var entries []client.Entry
	var keys [][]byte
	var want []string
	for i := range 600 {
		k := fmt.Appendf(nil, "rs-%04d", i)
		entries = append(entries, client.Entry{Key: k, Value: fmt.Appendf(nil, "v%d", i)})
		keys = append(keys, k)
		want = append(want, string(k))
	}
	if _, err := cl.Upsert(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	for _, level := range []client.Consistency{client.Linearizable, client.SessionRead, client.Eventual} {
		reads, err := cl.GetMany(ctx, append(keys, []byte("rs-missing")), client.ReadOptions{Consistency: level})
		if err != nil {
			t.Fatalf("%v: %v", level, err)
		}
		for i, e := range entries {
			if !reads[i].Found || string(reads[i].Data) != string(e.Value) {
				t.Fatalf("%v: %s = %+v", level, e.Key, reads[i])
			}
		}
		if reads[600].Found {
			t.Fatalf("%v: a missing key found", level)
		}
		var got []string
		for kv, err := range cl.Scan(ctx, client.ScanOptions{Prefix: []byte("rs-"), Consistency: level}) {
			if err != nil {
				t.Fatalf("%v scan: %v", level, err)
			}
			got = append(got, string(kv.Key))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%v: the scan over three nodes gave %d keys, want 600 in order", level, len(got))
		}
	}
	// Pages of 70 across the three nodes' streams.
	var paged []string
	var token []byte
	for {
		page, next, err := cl.ScanPage(ctx, client.ScanOptions{Prefix: []byte("rs-"), Limit: 70, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range page {
			paged = append(paged, string(kv.Key))
		}
		if next == nil {
			break
		}
		token = next
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("pages of 70 gave %d keys", len(paged))
	}

	// Asked of n1 alone: its keys answered, the others' owners named.
	routes, err := dataClient(t, c.nodes["n1"].addr).GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := dataClient(t, c.nodes["n1"].addr).GetMany(ctx, &sluicev1.GetManyRequest{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	for i, r := range resp.Results {
		slot := keyspace.Slot(keys[i], routes.Slots)
		var owner *sluicev1.Route
		for _, rt := range routes.Routes {
			if slot >= rt.From && slot < rt.To {
				owner = rt
			}
		}
		if owner.Node == "n1" {
			if !r.Found || r.Error != nil {
				t.Fatalf("n1's own key %s: %+v", keys[i], r)
			}
			answered++
			continue
		}
		if r.Found || r.Error == nil || codes.Code(r.Error.Code) != codes.FailedPrecondition || r.Error.BadNode == nil ||
			r.Error.BadNode.Node != owner.Node || r.Error.BadNode.Addr != c.nodes[owner.Node].addr {
			t.Fatalf("%s (owned by %s) asked of n1: %+v", keys[i], owner.Node, r)
		}
	}
	if answered == 0 || answered == len(keys) {
		t.Fatalf("n1 answered %d of %d keys: want some, not all", answered, len(keys))
	}
	st, err := dataClient(t, c.nodes["n1"].addr).Scan(ctx, &sluicev1.ScanRequest{Prefix: []byte("rs-"), Partitions: []uint32{2}})
	if err == nil {
		_, err = st.Recv()
	}
	s := status.Convert(err)
	if s.Code() != codes.FailedPrecondition || len(s.Details()) != 1 || s.Details()[0].(*sluicev1.BadNode).Node != "n2" {
		t.Fatalf("a scan of n2's partition asked of n1: %v", err)
	}
	// n1 alone, no partitions named: its own, in order, and which they are.
	st, err = dataClient(t, c.nodes["n1"].addr).Scan(ctx, &sluicev1.ScanRequest{Prefix: []byte("rs-")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil || !slices.Equal(m.Partitions, []uint32{1, 4}) {
		t.Fatalf("n1's scan covers %v (%v), want partitions 1 and 4", m.GetPartitions(), err)
	}
	n := len(m.Entries)
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n += len(m.Entries)
	}
	if n != answered {
		t.Fatalf("n1's scan has %d keys, its GetMany answered %d", n, answered)
	}

	// The CLI: several keys, JSON, a scan with its next page.
	out, errs, code := sluice(t, c.nodes["n2"].addr, "get", "rs-0001", "rs-0002", "rs-none", "-o", "json")
	var js []map[string]any
	if err := json.Unmarshal([]byte(out), &js); code != 0 || err != nil || len(js) != 3 || js[0]["value"] != "v1" || js[2]["found"] != false {
		t.Fatalf("get -o json: %q %q exit %d", out, errs, code)
	}
	out, errs, code = sluice(t, c.nodes["n3"].addr, "get", "rs-0001", "rs-none", "rs-0002")
	if code != 3 || out != "rs-0001\tv1\nrs-0002\tv2\n" || !strings.Contains(errs, `key "rs-none" not found`) { // exit 3: not found
		t.Fatalf("get of three keys: %q %q exit %d", out, errs, code)
	}
	out, errs, code = sluice(t, c.nodes["n3"].addr, "scan", "rs-00", "--limit", "3")
	if code != 0 || out != "rs-0000\tv0\nrs-0001\tv1\nrs-0002\tv2\n" || !strings.Contains(errs, "more keys: --page-token ") {
		t.Fatalf("scan --limit 3: %q %q exit %d", out, errs, code)
	}
	tok := strings.TrimSpace(errs[strings.Index(errs, "--page-token ")+len("--page-token "):])
	out, _, code = sluice(t, c.nodes["n1"].addr, "scan", "rs-00", "--limit", "3", "--page-token", tok)
	if code != 0 || out != "rs-0003\tv3\nrs-0004\tv4\nrs-0005\tv5\n" {
		t.Fatalf("scan's next page: %q exit %d", out, code)
	}
	_, errs, code = sluice(t, c.nodes["n1"].addr, "scan", "rs-01", "--page-token", tok)
	if code != 6 || !strings.Contains(errs, "made for another prefix or range") { // exit 6: refused by the cluster
		t.Fatalf("a token of another prefix: %q exit %d", errs, code)
	}
}
