package partition

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/partition/core"
	"github.com/sluicedb/sluice/store"
	"github.com/sluicedb/sluice/wal"
)

// fakeLog is an in-memory log for tests of the loop: committed records per
// slot. Appends can be gated (held until the test answers them).
type fakeLog struct {
	mu    sync.Mutex
	slots map[int32][]wal.Positioned
	gate  chan appendCall // when non-nil, every Append waits for the test here
}

type appendCall struct {
	g      *wal.Group
	answer chan error // nil: commit
}

func newFakeLog() *fakeLog { return &fakeLog{slots: make(map[int32][]wal.Positioned)} }

func (l *fakeLog) commit(g *wal.Group) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	offs := make([]int64, len(g.Records))
	for i, r := range g.Records {
		offs[i] = int64(len(l.slots[r.Slot]))
		l.slots[r.Slot] = append(l.slots[r.Slot], wal.Positioned{Record: r, Offset: offs[i]})
	}
	return offs
}

type fakeAppender struct{ l *fakeLog }

func (a fakeAppender) Append(ctx context.Context, g *wal.Group) ([]int64, error) {
	a.l.mu.Lock()
	gate := a.l.gate
	a.l.mu.Unlock()
	if gate == nil {
		return a.l.commit(g), nil
	}
	call := appendCall{g: g, answer: make(chan error, 1)}
	select {
	case gate <- call:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := <-call.answer; err != nil {
		return nil, err
	}
	return a.l.commit(g), nil
}

func (fakeAppender) Close() {}

func (l *fakeLog) setGate(g chan appendCall) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gate = g
}

func (l *fakeLog) replay(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error, _ func(string)) (map[int32]int64, error) {
	l.mu.Lock()
	b := wal.Replayed{Reached: make(map[int32]int64)}
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
		Config: core.Config{ID: 1, Range: keyspace.Range{From: 0, To: 4}, Slots: 4, Epoch: 1},
		Store:  st,
		WAL: &testLog{
			newAppender: func(context.Context) (wal.Appender, error) { return fakeAppender{l}, nil },
			replay:      l.replay,
		},
		Log: zerolog.Nop(),
	}
}

// testLog is a wal.Log of parts a test may swap (cfg.WAL.(*testLog)).
type testLog struct {
	newAppender func(context.Context) (wal.Appender, error)
	replay      wal.ReplayFunc
	retention   time.Duration
}

func (t *testLog) NewAppender(ctx context.Context) (wal.Appender, error) { return t.newAppender(ctx) }
func (t *testLog) Replay(ctx context.Context, from map[int32]int64, fn func(wal.Replayed) error, waiting func(string)) (map[int32]int64, error) {
	return t.replay(ctx, from, fn, waiting)
}
func (t *testLog) Retention() time.Duration { return t.retention }

// startServing starts a partition and waits until it serves.
func startServing(t *testing.T, cfg Config) *Partition {
	t.Helper()
	p := Start(cfg)
	t.Cleanup(func() { p.Close() })
	waitFor(t, "the partition serves", p.Serving)
	return p
}

// waitFor waits for cond with a generous deadline: never a speed assumption.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}

func entries(kvs ...string) []kv.Entry {
	var es []kv.Entry
	for i := 0; i < len(kvs); i += 2 {
		es = append(es, kv.Entry{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	return es
}
