package partition

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/store"
)

// fakeLog is an in-memory changelog: committed records per slot. Appends can
// be gated (held until the test lets them go) and failed.
type fakeLog struct {
	mu    sync.Mutex
	slots map[int32][]*kgo.Record
	gate  chan appendCall // when non-nil, every Append waits for the test here
}

type appendCall struct {
	recs   []*kgo.Record
	answer chan appendAnswer
}

type appendAnswer struct {
	commit bool  // make the records part of the log
	err    error // what Append returns
}

func newFakeLog() *fakeLog { return &fakeLog{slots: make(map[int32][]*kgo.Record)} }

func (l *fakeLog) commit(recs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		r.Offset = int64(len(l.slots[r.Partition]))
		l.slots[r.Partition] = append(l.slots[r.Partition], r)
	}
}

type fakeAppender struct{ l *fakeLog }

func (a fakeAppender) Append(ctx context.Context, recs []*kgo.Record) error {
	if a.l.gate == nil {
		a.l.commit(recs)
		return nil
	}
	call := appendCall{recs: recs, answer: make(chan appendAnswer, 1)}
	select {
	case a.l.gate <- call:
	case <-ctx.Done():
		return ctx.Err()
	}
	ans := <-call.answer
	if ans.commit {
		a.l.commit(recs)
	}
	return ans.err
}

func (fakeAppender) Close() {}

func (l *fakeLog) replay(ctx context.Context, from map[int32]int64, fn func(changelog.Batch) error) (map[int32]int64, error) {
	l.mu.Lock()
	b := changelog.Batch{Reached: make(map[int32]int64)}
	for slot, off := range from {
		recs := l.slots[slot]
		if off < int64(len(recs)) {
			b.Records = append(b.Records, recs[off:]...)
			b.Reached[slot] = int64(len(recs))
		}
	}
	l.mu.Unlock()
	if len(b.Records) > 0 {
		if err := fn(b); err != nil {
			return nil, err
		}
	}
	return b.Reached, nil
}

func testConfig(l *fakeLog, st store.Store) Config {
	return Config{
		ID: 1, Range: keyspace.Range{From: 0, To: 4}, Slots: 4, Epoch: 1, Topic: "t.changelog",
		Store:       st,
		NewAppender: func(context.Context) (Appender, error) { return fakeAppender{l}, nil },
		Replay:      l.replay,
		Log:         zerolog.Nop(),
	}
}

// startServing starts a partition and waits until it serves.
func startServing(t *testing.T, cfg Config) *Partition {
	t.Helper()
	p := Start(cfg)
	t.Cleanup(func() { p.Close() })
	waitServing(t, p)
	return p
}

func waitServing(t *testing.T, p *Partition) {
	t.Helper()
	for i := 0; !p.Serving(); i++ {
		if i > 5000 {
			t.Fatal("partition never started serving")
		}
		waitABit()
	}
}

var errBoom = errors.New("boom")
