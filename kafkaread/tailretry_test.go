package kafkaread_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/kafkaread"
)

// A tail whose slot's leader could not be looked up (the metadata request
// failed: a node cut off from its brokers) tries again after a backoff. It
// used to wait for an answer from a fetch it had never sent, and never read
// again: a node cut off from Kafka and joined again never saw the registry
// record that deposed it (integration TestNodeCutOffFromBrokersOrClients).
func TestTailRetriesAfterALeaderLookupFailed(t *testing.T) {
	c, b := kfakeBroker(t, "")
	topic := b.topic(t, 1, nil)
	var cut atomic.Bool
	for _, key := range []kmsg.Key{kmsg.Fetch, kmsg.Metadata} {
		c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if cut.Load() {
				return nil, errors.New("cut off"), true // the connection closes
			}
			return nil, nil, false
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := make(chan string, 16)
	lookupFailed := make(chan struct{}, 1)
	done := make(chan error, 1)
	// No retries inside the client: a lookup refused fails at once.
	opts := append(slices.Clone(b.opts), kgo.RequestRetries(0))
	go func() {
		done <- kafkaread.Tail(ctx, opts, topic, map[int32]int64{0: 0}, func(bt kafkaread.Step) error {
			for _, r := range bt.Records {
				seen <- string(r.Key)
			}
			return nil
		}, kafkaread.StallAfter(10*time.Millisecond), kafkaread.OnStall(func(s *kafkaread.Stall) {
			if s != nil && strings.Contains(s.Reason, "metadata") {
				select {
				case lookupFailed <- struct{}{}:
				default:
				}
			}
		}))
	}()
	read := func(want string) {
		t.Helper()
		select {
		case k := <-seen:
			if k != want {
				t.Fatalf("tail read %q, want %q", k, want)
			}
		case err := <-done:
			t.Fatalf("tail ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("the tail did not read %q in 60s", want)
		}
	}
	b.commit(t, "w", topic, 0, "before")
	read("before")
	cut.Store(true)
	select {
	case <-lookupFailed:
	case err := <-done:
		t.Fatalf("tail ended: %v", err)
	case <-ctx.Done():
		t.Fatal("the tail's leader lookup never failed")
	}
	cut.Store(false)
	b.commit(t, "w", topic, 0, "after")
	read("after")
}
