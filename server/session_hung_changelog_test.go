package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/router"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// hungChangelog is a changelog whose broker stopped answering: every call
// waits until its context ends.
type hungChangelog struct{ calls chan struct{} }

func (h hungChangelog) Bounds(ctx context.Context) (LogBounds, error) {
	h.calls <- struct{}{}
	<-ctx.Done()
	return LogBounds{}, ctx.Err()
}
func (hungChangelog) Tail(ctx context.Context, _ map[int32]int64, _ func(wal.Replayed) error) error {
	<-ctx.Done()
	return ctx.Err()
}
func (hungChangelog) OffsetsAfter(ctx context.Context, _ time.Time) (map[int32]int64, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (hungChangelog) Retention() time.Duration { return 0 }

// behindReplica is a standby that caught up once and whose tail then
// stopped (its Kafka connection hangs): it never applies the offset asked.
type behindReplica struct{}

func (behindReplica) ReadCommitted([]byte) (kv.Read, error) { return kv.Read{}, nil }
func (behindReplica) ReadCommittedMany([][]byte, *store.ReadBudget) ([]kv.Read, error) {
	return nil, nil
}
func (behindReplica) ScanCommitted([]byte, []byte, func([]byte, kv.Value) bool) error { return nil }
func (behindReplica) WaitApplied(ctx context.Context, _ int32, _ int64) error {
	<-ctx.Done()
	return ctx.Err()
}

// A SESSION read on a replica whose Kafka connection hangs answers
// UNAVAILABLE within the session wait, as it does when the changelog
// answers, even for a caller with no deadline (a RESP connection, a gRPC
// client without one). Found by an outside test of the binary (helper M):
// with the node's Kafka behind a paused proxy, a SESSION Get on its standby
// answered "not applied on this replica within the session wait of 10s"
// after 41 s, and a RESP GET took 41-51 s: the check of the token against
// the changelog's end (sessionWait.checkEnd → Changelog.Bounds) runs on
// the request's context, not capped by the session wait.
func TestSessionWaitIsBoundedWhenTheChangelogHangs(t *testing.T) {
	table, err := router.NewTable(16, []router.Partition{{ID: 1, Range: keyspace.Range{From: 0, To: 16}, Epoch: 1,
		Node: "n1", Addr: "127.0.0.1:1", Standbys: []string{"n2"}, StandbyAddrs: []string{"127.0.0.1:2"}}})
	if err != nil {
		t.Fatal(err)
	}
	hung := hungChangelog{calls: make(chan struct{}, 16)}
	const wait = 300 * time.Millisecond
	d := &Data{Node: "n2", Table: func() *router.Table { return table }, Changelog: hung, SessionWait: wait,
		Standby: func(uint32) (CommittedReader, bool) { return behindReplica{}, true }}
	key := []byte("k")
	slot := keyspace.Slot(key, 16)
	// The test's safety net, far past the session wait: the read must end
	// on its own before it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err = d.Get(ctx, &sluicev1.GetRequest{Key: key, Consistency: sluicev1.Consistency_SESSION,
		Session: &sluicev1.Session{Offsets: map[int32]int64{slot: 1000}}})
	took := time.Since(start)
	if len(hung.calls) == 0 {
		t.Fatal("the read never asked the changelog for its end: this test no longer covers the hung changelog")
	}
	// Held by the hung changelog, the read would end at the caller's
	// deadline instead (DEADLINE_EXCEEDED).
	if s := status.Convert(err); s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "session wait") {
		t.Errorf("SESSION Get after %v: %v, want UNAVAILABLE naming the session wait of %v", took.Round(time.Millisecond), err, wait)
	}
}
