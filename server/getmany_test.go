package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// put writes n keys "prefix-%03d" = "value-%03d" and returns the session.
func put(t *testing.T, n *testNode, prefix string, count int) *client.Session {
	t.Helper()
	var entries []client.Entry
	for i := range count {
		entries = append(entries, client.Entry{Key: fmt.Appendf(nil, "%s-%03d", prefix, i), Value: fmt.Appendf(nil, "value-%03d", i)})
	}
	if _, err := n.cl.Upsert(context.Background(), entries...); err != nil {
		t.Fatal(err)
	}
	return n.cl.Session()
}

// One call answers keys of every partition, in request order, at every
// level: values with version and clock stamp, "not found" for missing keys,
// duplicates answered twice.
func TestGetManyAnswersInRequestOrder(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	sess := put(t, n, "k", 200)
	if _, err := n.cl.Upsert(ctx, client.Entry{Key: []byte("k-007"), Value: []byte("again")}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.Remove(ctx, []byte("k-008")); err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{[]byte("k-150"), []byte("missing"), []byte("k-007"), []byte("k-008"), []byte("k-000"), []byte("k-150")}
	for i := 0; i < 200; i += 3 {
		keys = append(keys, fmt.Appendf(nil, "k-%03d", i))
	}
	for _, level := range []sluicev1.Consistency{sluicev1.Consistency_LINEARIZABLE, sluicev1.Consistency_SESSION, sluicev1.Consistency_EVENTUAL} {
		resp, err := n.data.GetMany(ctx, &sluicev1.GetManyRequest{Keys: keys, Consistency: level, Session: wireSession(n.cl.Session())})
		if err != nil {
			t.Fatalf("%v: %v", level, err)
		}
		if len(resp.Results) != len(keys) {
			t.Fatalf("%v: %d results for %d keys", level, len(resp.Results), len(keys))
		}
		for i, r := range resp.Results {
			k := string(keys[i])
			want, wantVersion := strings.Replace(k, "k-", "value-", 1), uint64(1)
			switch k {
			case "missing", "k-008":
				if r.Found || r.Error != nil {
					t.Fatalf("%v: %s = %+v, want not found", level, k, r)
				}
				continue
			case "k-007":
				want, wantVersion = "again", 2
			}
			if !r.Found || string(r.Value) != want || r.Version != wantVersion || r.Timestamp == 0 || r.Error != nil {
				t.Fatalf("%v: key %d %s = %+v, want %q at version %d", level, i, k, r, want, wantVersion)
			}
		}
	}
	// A SESSION read names what it must see; the Go client splits and joins.
	reads, err := n.cl.GetMany(ctx, keys, client.ReadOptions{Consistency: client.SessionRead, Session: sess})
	if err != nil || len(reads) != len(keys) || !reads[0].Found || !bytes.Equal(reads[0].Data, []byte("value-150")) || reads[1].Found {
		t.Fatalf("client GetMany: %+v %v", reads[:2], err)
	}
}

// More keys than one call takes: the Go client splits them.
func TestClientGetManySplitsLargeRequests(t *testing.T) {
	n := startNode(t)
	put(t, n, "big", 900)
	var keys [][]byte
	for i := range 2500 {
		keys = append(keys, fmt.Appendf(nil, "big-%03d", i%900))
	}
	reads, err := n.cl.GetMany(context.Background(), keys, client.ReadOptions{Consistency: client.Eventual})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reads {
		if want := fmt.Sprintf("value-%03d", i%900); !r.Found || string(r.Data) != want {
			t.Fatalf("key %d: %+v, want %s", i, r, want)
		}
	}
}

// Values past the response's limit are not read; the Go client asks again.
func TestGetManyResponseLimit(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 900<<10)
	var keys [][]byte
	for i := range 6 {
		k := fmt.Appendf(nil, "large-%d", i)
		keys = append(keys, k)
		if _, err := n.cl.Upsert(ctx, client.Entry{Key: k, Value: big}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := n.data.GetMany(ctx, &sluicev1.GetManyRequest{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	read, refused := 0, 0
	for _, r := range resp.Results {
		switch {
		case r.Found:
			read++
		case r.Error != nil && codes.Code(r.Error.Code) == codes.ResourceExhausted && strings.Contains(r.Error.Message, "limit of 3145728 bytes"):
			refused++
		default:
			t.Fatalf("unexpected answer %+v", r)
		}
	}
	if read != 3 || refused != 3 {
		t.Fatalf("%d read, %d refused: want 3 and 3 under a 3 MiB limit", read, refused)
	}
	reads, err := n.cl.GetMany(ctx, keys, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reads {
		if !r.Found || len(r.Data) != len(big) {
			t.Fatalf("client: key %d not read whole", i)
		}
	}
}

// Bad input is INVALID_ARGUMENT naming what is wrong, and reads nothing.
func TestGetManyBadInput(t *testing.T) {
	n := startNode(t)
	many := make([][]byte, 1001)
	for i := range many {
		many[i] = fmt.Appendf(nil, "k%d", i)
	}
	huge := make([][]byte, 300)
	for i := range huge {
		huge[i] = bytes.Repeat([]byte{'a' + byte(i%26)}, 4000)
	}
	for _, tc := range []struct {
		name string
		req  *sluicev1.GetManyRequest
		want string
	}{
		{"no keys", &sluicev1.GetManyRequest{}, "at least one key"},
		{"1001 keys", &sluicev1.GetManyRequest{Keys: many}, "at most 1000 keys per call, got 1001"},
		{"empty key", &sluicev1.GetManyRequest{Keys: [][]byte{[]byte("a"), nil}}, "key 1: invalid argument: empty key"},
		{"key over 4 KiB", &sluicev1.GetManyRequest{Keys: [][]byte{make([]byte, 5000)}}, "over the limit of 4096 bytes"},
		{"reserved key", &sluicev1.GetManyRequest{Keys: [][]byte{{0, 'x'}}}, "reserved"},
		{"keys over 1 MiB", &sluicev1.GetManyRequest{Keys: huge}, "at most 1048576 bytes of keys per call (1 MiB), got 1200000"},
		{"unknown level", &sluicev1.GetManyRequest{Keys: [][]byte{[]byte("a")}, Consistency: 7}, "unknown consistency level 7"},
		{"session of another cluster", &sluicev1.GetManyRequest{Keys: [][]byte{[]byte("a")}, Consistency: sluicev1.Consistency_SESSION,
			Session: &sluicev1.Session{Cluster: "other/0123", Offsets: map[int32]int64{0: 1}}}, `a token of cluster "other/0123"`},
	} {
		_, err := n.data.GetMany(context.Background(), tc.req)
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.want) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT with %q", tc.name, err, tc.want)
		}
	}
}

// A key named again past the limit is refused, but a later key that still
// fits is read: what a refused copy would have taken is not spent.
func TestGetManyRepeatedKeyOverLimitLeavesRoomForSmallerKeys(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	big := bytes.Repeat([]byte("b"), 1_000_000)
	if _, err := n.cl.Upsert(ctx, client.Entry{Key: []byte("big"), Value: big}, client.Entry{Key: []byte("small"), Value: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	keys := [][]byte{[]byte("big"), []byte("big"), []byte("big"), []byte("big"), []byte("small")}
	for _, level := range []sluicev1.Consistency{sluicev1.Consistency_LINEARIZABLE, sluicev1.Consistency_SESSION, sluicev1.Consistency_EVENTUAL} {
		resp, err := n.data.GetMany(ctx, &sluicev1.GetManyRequest{Keys: keys, Consistency: level, Session: wireSession(n.cl.Session())})
		if err != nil {
			t.Fatalf("%v: %v", level, err)
		}
		for i, r := range resp.Results[:3] {
			if !r.Found || len(r.Value) != len(big) {
				t.Fatalf("%v: copy %d of big = found %v, %d bytes, error %v", level, i, r.Found, len(r.Value), r.Error)
			}
		}
		if r := resp.Results[3]; r.Error == nil || codes.Code(r.Error.Code) != codes.ResourceExhausted {
			t.Fatalf("%v: the 4th copy of big = %+v, want RESOURCE_EXHAUSTED", level, r.Error)
		}
		if r := resp.Results[4]; !r.Found || string(r.Value) != "s" {
			t.Fatalf("%v: small = found %v, error %v; want its value (145,728 bytes were left)", level, r.Found, r.Error)
		}
	}
}
