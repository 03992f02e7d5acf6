package kafkaread_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/kafkaread"
)

// Replay never starts later than asked: a log deleted past the offset is an error.
func TestReplayRefusesOffsetGone(t *testing.T) {
	tp, opts, adm := setup(t, 1)
	ctx := context.Background()
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(tp.Ingest()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adm.DeleteRecords(ctx, kadm.Offsets{tp.Ingest(): {0: {Topic: tp.Ingest(), Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	_, err = kafkaread.Replay(ctx, opts, tp.Ingest(), map[int32]int64{0: 1}, func(kafkaread.Step) error { return nil })
	var gone *kafkaread.OffsetGoneError
	if !errors.As(err, &gone) || gone.Needed != 1 || gone.LogStart != 3 {
		t.Fatalf("err = %v, want OffsetGoneError needing 1 with log start 3", err)
	}
}

// An offset a store or snapshot reached that the log does not (a topic
// deleted and created again) is an error naming slot and offsets, for a
// replay and a tail alike, never a silent start elsewhere; so is, for a
// tail, an offset the log no longer holds.
func TestOffsetsOutsideTheLogAreRefused(t *testing.T) {
	tp, opts, adm := setup(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app, err := changelog.NewAppender(ctx, changelog.AppenderConfig{Client: opts, Topics: tp, TransactionalID: tp.TransactionalID(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	group(t, app, change(1, 0), change(2, 0), change(3, 1))
	_, err = kafkaread.Replay(ctx, opts, tp.Changelog(), map[int32]int64{0: 50, 1: 0}, func(kafkaread.Step) error { return nil })
	var past *kafkaread.OffsetPastEndError
	// The log's end: two records and, once written, their commit marker.
	if !errors.As(err, &past) || past.Slot != 0 || past.Reached != 50 || past.LogEnd < 2 || past.LogEnd > 3 {
		t.Fatalf("Replay from past the end = %v, want OffsetPastEndError for slot 0 at 50, log end 2 or 3", err)
	}
	for _, s := range []string{"slot 0", "offset 50", fmt.Sprint("ends at ", past.LogEnd)} {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("the error %q does not name %q", err, s)
		}
	}
	if got := tail(ctx, t, opts, tp.Changelog(), map[int32]int64{0: 50}); !errors.As(got, &past) || past.Reached != 50 {
		t.Fatalf("Tail from past the end = %v, want OffsetPastEndError", got)
	}

	// A log deleted past the offset: the tail does not jump to its start.
	in, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(tp.Ingest()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for range 5 {
		if err := in.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v"), Partition: 0}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adm.DeleteRecords(ctx, kadm.Offsets{tp.Ingest(): {0: {Topic: tp.Ingest(), Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	var gone *kafkaread.OffsetGoneError
	if got := tail(ctx, t, opts, tp.Ingest(), map[int32]int64{0: 1}); !errors.As(got, &gone) || gone.Needed != 1 || gone.LogStart != 3 {
		t.Fatalf("Tail from a deleted offset = %v, want OffsetGoneError needing 1 with log start 3", got)
	}
}

// tail runs Tail until it returns or hands over a batch (which it should not).
func tail(ctx context.Context, t *testing.T, opts []kgo.Opt, topic string, from map[int32]int64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return kafkaread.Tail(ctx, opts, topic, from, func(b kafkaread.Step) error {
		return fmt.Errorf("the tail handed over records from %v", b.Reached)
	})
}
