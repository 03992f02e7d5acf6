package server

import (
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/wal"
)

// sentWatch records what a watch sends.
type sentWatch struct {
	grpc.ServerStreamingServer[sluicev1.WatchResponse]
	msgs []*sluicev1.WatchResponse
}

func (s *sentWatch) Send(m *sluicev1.WatchResponse) error {
	s.msgs = append(s.msgs, m)
	return nil
}

// A watch's messages stay within the read RPCs' response budget, counting
// what each event costs besides its key and value: a step of 1 MiB of 6-byte
// keys made one message of ~5 MiB, over grpc-go's 4 MiB receive limit: the
// client could never get past it.
func TestWatchMessagesStayWithinTheResponseBudget(t *testing.T) {
	for _, tc := range []struct {
		name         string
		keys, values int
	}{{"small events", 150_000, 0}, {"large values", 8, 900 << 10}} {
		var b wal.Replayed
		for i := range tc.keys {
			c := kv.Change{Key: fmt.Appendf(nil, "%06d", i), Value: make([]byte, tc.values), Version: 1 << 40, Timestamp: 1 << 62}
			b.Records = append(b.Records, wal.Positioned{Record: kv.Record{Kind: kv.KindChange, Slot: int32(i % 16), Change: c}, Offset: int64(i)})
		}
		s := &sentWatch{}
		w := &watcher{d: &Data{Cluster: "c"}, stream: s, pos: map[int32]int64{}}
		if err := w.batch(b); err != nil {
			t.Fatal(err)
		}
		events := 0
		for _, m := range s.msgs {
			events += len(m.Events)
			if n := proto.Size(m); n > MaxGetManyValueBytes+(64<<10) {
				t.Fatalf("%s: a message of %d events is %d bytes, over the %d of a response", tc.name, len(m.Events), n, MaxGetManyValueBytes)
			}
		}
		if events != tc.keys {
			t.Fatalf("%s: %d events sent, want %d", tc.name, events, tc.keys)
		}
	}
}
