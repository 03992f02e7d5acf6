package kafkaread_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/kafkaread"
)

// A tail fetches all the slots a broker leads in one request. A broker
// answers the requests of one connection in turn, so a request per slot
// made a committed change wait out the MaxWait of every idle slot's
// request ahead of it: a Watch saw changes seconds late (issue 22.8).
func TestTailFetchesABrokersSlotsInOneRequest(t *testing.T) {
	const slots = 16
	c, b := kfakeBroker(t, "")
	topic := b.topic(t, slots, nil)
	var (
		mu    sync.Mutex
		sizes []int // slots named by each fetch of topic
	)
	c.ControlKey(int16(kmsg.Fetch), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, rt := range kr.(*kmsg.FetchRequest).Topics { // the tail is the only reader
			mu.Lock()
			sizes = append(sizes, len(rt.Partitions))
			mu.Unlock()
		}
		return nil, nil, false
	})
	from := map[int32]int64{}
	for s := range int32(slots) {
		from[s] = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- kafkaread.Tail(ctx, b.opts, topic, from, func(bt kafkaread.Step) error {
			for _, r := range bt.Records {
				seen <- string(r.Key)
			}
			return nil
		})
	}()
	b.commit(t, "w", topic, 9, "k")
	select {
	case k := <-seen:
		if k != "k" {
			t.Fatalf("tail read %q", k)
		}
	case err := <-done:
		t.Fatalf("tail ended: %v", err)
	case <-ctx.Done():
		t.Fatal("the committed change was not read in 60s")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("tail: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range sizes {
		if n != slots {
			t.Fatalf("fetch %d of %d named %d slots, want all %d in one request (%v)", i+1, len(sizes), n, slots, sizes)
		}
	}
	t.Logf("%d fetches, each of all %d slots", len(sizes), slots)
}

// A broker fills one answer's slots in order: once one has data, the
// others get what is left of the answer's bytes, and may come back empty
// with records to read. Such an empty answer is no gap: a read with a small
// fetch bound still reads every record of every slot.
func TestReadMissesNothingWhenAnAnswerIsFull(t *testing.T) {
	b := kafkaBroker(t)
	const slots = 4
	topic := b.topic(t, slots, nil)
	want := map[int32][]string{}
	for round := range 3 {
		for s := range int32(slots) {
			k := fmt.Sprintf("%d-%d-%s", s, round, strings.Repeat("x", 600))
			b.commit(t, "t", topic, s, k)
			want[s] = append(want[s], k)
		}
	}
	from := map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := map[int32][]string{}
	if _, err := kafkaread.Replay(ctx, b.opts, topic, from, func(bt kafkaread.Step) error {
		for _, r := range bt.Records {
			got[r.Partition] = append(got[r.Partition], string(r.Key))
		}
		return nil
	}, kafkaread.FetchMaxBytes(1024)); err != nil {
		t.Fatal(err)
	}
	for s := range int32(slots) {
		if !slices.Equal(got[s], want[s]) {
			t.Fatalf("slot %d: read %d records, want %d", s, len(got[s]), len(want[s]))
		}
	}
}
