package server_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// watched collects a watch's changes as "key=value@version" ("key-@version"
// for a removal) until want of them arrived, with the last token.
type watched struct {
	changes []string
	session *client.Session
}

func watchUntil(t *testing.T, n *testNode, prefix string, from *client.Session, want int, started chan<- *client.Session) watched {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var w watched
	done := fmt.Errorf("done")
	err := n.cl.Watch(ctx, []byte(prefix), client.WatchOptions{From: from}, func(b client.WatchBatch) error {
		if started != nil {
			started <- b.Session
			started = nil
		}
		for _, c := range b.Changes {
			if c.Removed {
				w.changes = append(w.changes, fmt.Sprintf("%s-@%d", c.Key, c.Version))
			} else {
				w.changes = append(w.changes, fmt.Sprintf("%s=%s@%d", c.Key, c.Value, c.Version))
			}
		}
		w.session = b.Session
		if len(w.changes) >= want {
			return done
		}
		return nil
	})
	if err != done {
		t.Fatalf("watch ended with %v after %v", err, w.changes)
	}
	return w
}

// A watch sees exactly the committed changes under its prefix, in order per
// key, from the moment it starts; a watch from a token (a write's or a
// watch's) resumes right after it.
func TestWatchFromNowAndFromTokens(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	put(t, n, "w", 5) // before the watch: not seen
	started := make(chan *client.Session, 1)
	result := make(chan watched, 1)
	go func() { result <- watchUntil(t, n, "w-", nil, 6, started) }()
	start := <-started
	if len(start.Offsets) != 16 || start.Cluster == "" {
		t.Fatalf("the first message's token covers %d slots, cluster %q", len(start.Offsets), start.Cluster)
	}
	write := func(k, v string) *client.Session {
		res, err := n.cl.Upsert(ctx, client.Entry{Key: []byte(k), Value: []byte(v)})
		if err != nil {
			t.Fatal(err)
		}
		return &client.Session{Offsets: map[int32]int64{res[0].Slot: res[0].Offset + 1}}
	}
	write("w-001", "one")
	write("x-001", "elsewhere")
	afterTwo := write("w-002", "two")
	write("w-001", "uno")
	if _, err := n.cl.Remove(ctx, []byte("w-002")); err != nil {
		t.Fatal(err)
	}
	write("w-003", "three")
	write("w-004", "four")
	got := <-result
	// Keys of different slots arrive in any order; each key's in order.
	want := "w-001=one@2 w-001=uno@3 | w-002=two@2 w-002-@3 | w-003=three@2 | w-004=four@2"
	if perKey(got.changes) != want {
		t.Fatalf("watch saw %v\nwant, per key: %s", got.changes, want)
	}
	// From the watch's last token: only what comes after.
	write("w-005", "five")
	again := watchUntil(t, n, "w-", got.session, 1, nil)
	if strings.Join(again.changes, " ") != "w-005=five@1" {
		t.Fatalf("resumed watch saw %v", again.changes)
	}
	// From a write's token (one slot named; the others from now): that
	// slot's changes after the write.
	slotOf := func(s *client.Session) int32 {
		for slot := range s.Offsets {
			return slot
		}
		return -1
	}
	from := watchUntil(t, n, "w-002", afterTwo, 1, nil) // w-002's removal came after
	if strings.Join(from.changes, " ") != "w-002-@3" || slotOf(afterTwo) < 0 {
		t.Fatalf("watch from a write's token saw %v", from.changes)
	}
}

// A node that shuts down ends its watches with UNAVAILABLE and the token to
// resume from.
func TestWatchEndsWithTokenOnShutdown(t *testing.T) {
	n := startNode(t)
	st, err := n.data.Watch(context.Background(), &sluicev1.WatchRequest{Prefix: []byte("z")})
	if err != nil {
		t.Fatal(err)
	}
	first, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	go n.Close()
	for {
		_, err = st.Recv()
		if err != nil {
			break
		}
	}
	s := status.Convert(err)
	var tok *sluicev1.Session
	for _, d := range s.Details() {
		if x, ok := d.(*sluicev1.Session); ok {
			tok = x
		}
	}
	if s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "shutting down") || tok == nil || len(tok.Offsets) != len(first.Session.Offsets) {
		t.Fatalf("watch ended with %v, token %v", err, tok)
	}
}

// Bad tokens are refused before anything is read: another cluster's, a slot
// the cluster does not have, an offset past the changelog's end.
func TestWatchBadInput(t *testing.T) {
	n := startNode(t)
	for _, tc := range []struct {
		name string
		req  *sluicev1.WatchRequest
		code codes.Code
		want string
	}{
		{"token of another cluster", &sluicev1.WatchRequest{From: &sluicev1.Session{Cluster: "other/ab", Offsets: map[int32]int64{1: 1}}}, codes.InvalidArgument, `a token of cluster "other/ab"`},
		{"slot out of range", &sluicev1.WatchRequest{From: &sluicev1.Session{Offsets: map[int32]int64{16: 0}}}, codes.InvalidArgument, "slot 16 is not one of the cluster's 16 slots"},
		{"offset past the end", &sluicev1.WatchRequest{From: &sluicev1.Session{Offsets: map[int32]int64{3: 1 << 40}}}, codes.InvalidArgument, "past the changelog's end"},
		{"negative offset", &sluicev1.WatchRequest{From: &sluicev1.Session{Offsets: map[int32]int64{3: -2}}}, codes.InvalidArgument, "negative offset"},
		{"reserved prefix", &sluicev1.WatchRequest{Prefix: []byte{0}}, codes.InvalidArgument, "reserved"},
	} {
		st, err := n.data.Watch(context.Background(), tc.req)
		if err == nil {
			_, err = st.Recv()
		}
		if s := status.Convert(err); s.Code() != tc.code || !strings.Contains(s.Message(), tc.want) {
			t.Errorf("%s: %v, want %v with %q", tc.name, err, tc.code, tc.want)
		}
	}
}

// perKey lists changes ("key=value@version" or "key-@version") key by key, in
// key order, each key's in the order seen, keys separated by " | ".
func perKey(changes []string) string {
	byKey := map[string][]string{}
	for _, c := range changes {
		k, _, found := strings.Cut(c, "=")
		if !found {
			k, _, _ = strings.Cut(c, "-@")
		}
		byKey[k] = append(byKey[k], c)
	}
	keys := slices.Sorted(maps.Keys(byKey))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = strings.Join(byKey[k], " ")
	}
	return strings.Join(parts, " | ")
}
