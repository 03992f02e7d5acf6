package changelog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kafkatxn"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/topics"
	"github.com/sluicedb/sluice/wal"
)

// Fault injection in-process (kfake): a commit the coordinator refuses is an
// error from Append, never a success, and the records stay invisible to a
// read_committed replay.
func TestRefusedCommitIsAnErrorAndInvisible(t *testing.T) {
	c, opts, tp, app := kfakeAppender(t, "fault")
	ctx := context.Background()

	failed := make(chan struct{})
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if req.(*kmsg.EndTxnRequest).Commit {
			select {
			case <-failed:
			default:
				close(failed)
			}
			c.KeepControl()
			resp := req.ResponseKind().(*kmsg.EndTxnResponse)
			resp.ErrorCode = kerr.InvalidTxnState.Code
			return resp, nil, true
		}
		c.DropControl()
		return nil, nil, false
	})
	_, err := app.Append(ctx, &wal.Group{Records: []kv.Record{rec("lost", "v", 1)}})
	<-failed
	if !errors.Is(err, wal.ErrNotCommitted) {
		t.Fatalf("Append = %v, want ErrNotCommitted for a refused commit", err)
	}
	n := 0
	if _, err := kafkaread.Replay(ctx, opts, tp.Changelog(), map[int32]int64{0: 0}, func(b kafkaread.Step) error { n += len(b.Records); return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d records of an unacknowledged group are visible", n)
	}
}

// The commit's answer proves "not committed" only when it answers the one
// EndTxn request sent: a producer fenced on its first commit request did not
// commit; one fenced on a retry may have committed with the first request
// (whose answer was lost) before a new owner fenced it: unknown.
func TestCommitOutcomeKnownOnlyFromTheFirstAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retries int // answers that make the client send EndTxn again first
		want    error
	}{
		{"fenced on the first request", 0, wal.ErrNotCommitted},
		{"fenced on a retry", 1, wal.ErrCommitUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _, app := kfakeAppender(t, "first")
			ctx := context.Background()
			// A fresh producer's first transaction may be aborted by franz-go
			// before any commit request (kafkatxn/commitwatch.go; CI saw it once):
			// one committed group first, so that the case under test sends
			// its commit.
			warm := time.Now().Add(time.Minute)
			for {
				_, err := app.Append(ctx, &wal.Group{Records: []kv.Record{rec("warm", "v", 1)}})
				if err == nil {
					break
				}
				if time.Now().After(warm) {
					t.Fatalf("no group committed within a minute: %v", err)
				}
			}
			var commits atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if !req.(*kmsg.EndTxnRequest).Commit {
					return nil, nil, false
				}
				resp := req.ResponseKind().(*kmsg.EndTxnResponse)
				resp.ErrorCode = kerr.ProducerFenced.Code
				if int(commits.Add(1)) <= tc.retries {
					resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code // retriable: the client sends EndTxn again
				}
				return resp, nil, true
			})
			_, err := app.Append(ctx, &wal.Group{Records: []kv.Record{rec("k", "v", 1)}})
			if !errors.Is(err, tc.want) || commits.Load() != int32(tc.retries+1) {
				t.Fatalf("Append = %v after %d commit requests, want %v after %d", err, commits.Load(), tc.want, tc.retries+1)
			}
		})
	}
}

// A dead letter is a copy of the ingest record while it fits, and a bounded
// stub (key prefix, sizes, reason, source) once it would not: a poison pill
// can never make its own dead letter too large to append.
func TestDeadLetterIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       int
		value     int
		header    int
		truncated bool
	}{
		{"at the limit", 10, MaxDeadLetterCopy - 10, 0, false},
		{"one byte over by its value", 10, MaxDeadLetterCopy - 9, 0, true},
		{"over by its headers", 10, 100, MaxDeadLetterCopy, true},
		{"over by a huge key", 4 << 20, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kv.IngestRecord{Slot: 3, Offset: 77, Key: bytes.Repeat([]byte("k"), tc.key), Value: make([]byte, tc.value)}
			if tc.header > 0 {
				r.Headers = []kv.Header{{Key: "h", Value: make([]byte, tc.header)}}
			}
			d := DeadLetter("dlq", wal.DeadLetter{Record: r, Reason: "too large"})
			size := len(d.Key) + len(d.Value)
			hdr := map[string]string{}
			for _, h := range d.Headers {
				size += len(h.Key) + len(h.Value)
				hdr[h.Key] = string(h.Value)
			}
			if hdr[HeaderError] != "too large" || hdr[HeaderSourceSlot] != "3" || hdr[HeaderSourceOffset] != "77" {
				t.Fatalf("headers %v", hdr)
			}
			_, truncated := hdr[HeaderTruncated]
			if truncated != tc.truncated || size > MaxDeadLetterCopy+4<<10 {
				t.Fatalf("truncated=%v size=%d, want truncated=%v and at most %d", truncated, size, tc.truncated, MaxDeadLetterCopy+4<<10)
			}
			if truncated && (len(d.Key) > StubKeyBytes || d.Value != nil) {
				t.Fatalf("stub keeps %d key bytes and a %d-byte value", len(d.Key), len(d.Value))
			}
		})
	}
}

// A new appender's first transaction to a topic its client has not loaded:
// franz-go could abort it and report it committed (kafkatxn/commitwatch.go). Every
// Append must either be committed or fail with ErrNotCommitted.
func TestFirstAppendIsCommittedOrFails(t *testing.T) {
	tp := topics.Names{Cluster: "first"}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, tp.Changelog()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	ctx := context.Background()
	acked := map[string]bool{}
	refused := 0
	for i := 0; i < 400; i++ {
		app, err := NewAppender(ctx, AppenderConfig{Client: opts, Topics: tp, TransactionalID: "first"})
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprint(i)
		switch _, err := app.Append(ctx, &wal.Group{Records: []kv.Record{rec(key, "v", 1)}}); {
		case err == nil:
			acked[key] = true
		case errors.Is(err, wal.ErrNotCommitted):
			refused++
		default:
			t.Fatal(err)
		}
		app.Close()
	}
	committed := map[string]bool{}
	if _, err := kafkaread.Replay(ctx, opts, tp.Changelog(), map[int32]int64{0: 0}, func(b kafkaread.Step) error {
		for _, r := range b.Records {
			committed[string(r.Key)] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for k := range acked {
		if !committed[k] {
			t.Errorf("append of %s was acknowledged but is not in the log", k)
		}
	}
	for k := range committed {
		if !acked[k] {
			t.Errorf("append of %s failed as not committed but is in the log", k)
		}
	}
	t.Logf("%d appends committed, %d refused as not committed", len(acked), refused)
}

// When franz-go aborts a commit it was asked for and returns nil (what it
// does to a fresh producer's first transaction now and then, on a busy
// machine: kafkatxn/commitwatch.go), nothing committed, and Append sends the
// group again rather than failing it: the partition would otherwise fail
// every request it held, reads included, and re-sync (CI saw a Get fail so
// right after a node restored). Here the broker carries out franz-go's
// abort, and the client says what franz-go says then.
func TestAppendSendsAgainWhatFranzAbortedInstead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		aborts int
		want   error // nil: committed once
		inLog  int
	}{
		{"once", 1, nil, 1},
		{"every time", abortedInsteadTries, wal.ErrNotCommitted, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, opts, tp, app := kfakeAppender(t, "instead")
			ctx := context.Background()
			var aborted atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if end := req.(*kmsg.EndTxnRequest); end.Commit && aborted.Load() < int32(tc.aborts) {
					aborted.Add(1)
					end.Commit = false
					app.watch.Log(kgo.LogLevelInfo, kafkatxn.FranzAbortsInstead)
				}
				return nil, nil, false
			})
			offsets, err := app.Append(ctx, &wal.Group{Records: []kv.Record{rec("k", "v", 1)}})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Append = %v %v, want %v", offsets, err, tc.want)
			}
			if got := aborted.Load(); got != int32(tc.aborts) {
				t.Fatalf("%d commits aborted, want %d", got, tc.aborts)
			}
			var got []int64
			if _, err := kafkaread.Replay(ctx, opts, tp.Changelog(), map[int32]int64{0: 0}, func(b kafkaread.Step) error {
				for _, r := range b.Records {
					got = append(got, r.Offset)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.inLog || tc.inLog == 1 && got[0] != offsets[0] {
				t.Fatalf("the log holds the group at %v, want %d copies (Append said %v)", got, tc.inLog, offsets)
			}
		})
	}
}

// kfakeAppender starts an in-process broker with cluster's topics (one slot)
// and an appender of partition 1 on it; both close when t ends.
func kfakeAppender(t *testing.T, cluster string) (*kfake.Cluster, []kgo.Opt, topics.Names, *Appender) {
	t.Helper()
	c, cl := kafkatest.Fake(t)
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	tp := topics.Names{Cluster: cluster}
	if _, err := topics.EnsureAll(context.Background(), cl, tp, 1, 1); err != nil {
		t.Fatal(err)
	}
	app, err := NewAppender(context.Background(), AppenderConfig{Client: opts, Topics: tp, TransactionalID: tp.TransactionalID(1), DeliveryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	return c, opts, tp, app
}
