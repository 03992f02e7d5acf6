package partition

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/store"
)

func waitABit() { time.Sleep(time.Millisecond) }

func entries(kv ...string) []pipeline.Entry {
	var es []pipeline.Entry
	for i := 0; i < len(kv); i += 2 {
		es = append(es, pipeline.Entry{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return es
}

func TestUpsertGetRemove(t *testing.T) {
	p := startServing(t, testConfig(newFakeLog(), store.NewMemory()))
	ctx := context.Background()
	res, err := p.Upsert(ctx, entries("a", "1", "b", "2", "a", "3"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Version != 1 || res[2].Version != 2 || res[0].Timestamp >= res[2].Timestamp {
		t.Fatalf("results %+v", res)
	}
	v, found, err := p.Get(ctx, []byte("a"))
	if err != nil || !found || string(v.Data) != "3" || v.Version != 2 {
		t.Fatalf("Get(a) = %+v %v %v", v, found, err)
	}
	existed, _, err := p.Remove(ctx, []byte("a"))
	if err != nil || !existed {
		t.Fatalf("Remove(a) = %v %v", existed, err)
	}
	if _, found, _ := p.Get(ctx, []byte("a")); found {
		t.Fatal("a still there after Remove")
	}
	if existed, _, err := p.Remove(ctx, []byte("a")); err != nil || existed {
		t.Fatalf("second Remove(a) = %v %v", existed, err)
	}
}

// The line monitor: a Get of a value that is not yet durable waits for the
// write before it, and replies leave in the order the partition took them.
func TestRepliesHeldUntilCommitAndInOrder(t *testing.T) {
	l := newFakeLog()
	l.gate = make(chan appendCall)
	p := startServing(t, testConfig(l, store.NewMemory()))
	ctx := context.Background()

	order := make(chan string, 3)
	go func() { _, err := p.Upsert(ctx, entries("k", "v1")); order <- fmt.Sprint("upsert1 ", err) }()
	first := <-l.gate // group 1 is in flight, holding upsert1
	go func() { _, err := p.Upsert(ctx, entries("k", "v2")); order <- fmt.Sprint("upsert2 ", err) }()
	time.Sleep(10 * time.Millisecond) // let upsert2 reach the inbox before the Get
	waitFor(t, func() bool { return p.InboxLen() == 0 })
	got := make(chan string, 1)
	go func() {
		v, _, err := p.Get(ctx, []byte("k"))
		got <- fmt.Sprint(string(v.Data), " ", err)
	}()
	select {
	case r := <-order:
		t.Fatalf("a reply left before its transaction committed: %s", r)
	case r := <-got:
		t.Fatalf("Get returned a value that was not durable: %s", r)
	case <-time.After(50 * time.Millisecond):
	}
	first.answer <- appendAnswer{commit: true}
	if r := <-order; r != "upsert1 <nil>" {
		t.Fatalf("first reply %q", r)
	}
	second := <-l.gate // group 2: upsert2
	select {
	case r := <-got:
		t.Fatalf("Get released before the write it read (v2) was durable: %s", r)
	case <-time.After(50 * time.Millisecond):
	}
	second.answer <- appendAnswer{commit: true}
	if r := <-order; r != "upsert2 <nil>" {
		t.Fatalf("second reply %q", r)
	}
	if r := <-got; r != "v2 <nil>" {
		t.Fatalf("Get = %q, want v2", r)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		waitABit()
	}
}

// A failed append fails its request and every later pending one; nothing is
// acknowledged falsely, and the partition re-syncs and serves again.
func TestAppendFailureFailsPendingAndResyncs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		committed bool // the commit went through although Append said error
	}{{"aborted", false}, {"outcome-unknown", true}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newFakeLog()
			l.gate = make(chan appendCall)
			p := startServing(t, testConfig(l, store.NewMemory()))
			ctx := context.Background()
			errs := make(chan error, 2)
			go func() { _, err := p.Upsert(ctx, entries("x", "1")); errs <- err }()
			call := <-l.gate
			go func() { _, err := p.Upsert(ctx, entries("y", "2")); errs <- err }()
			waitFor(t, func() bool { return p.InboxLen() == 0 })
			time.Sleep(10 * time.Millisecond)
			call.answer <- appendAnswer{commit: tc.committed, err: errBoom}
			for i := 0; i < 2; i++ {
				if err := <-errs; !errors.Is(err, ErrAppendFailed) {
					t.Fatalf("reply %d: err = %v, want ErrAppendFailed", i, err)
				}
			}
			l.gate = nil
			waitServing(t, p)
			_, found, err := p.Get(ctx, []byte("x"))
			if err != nil || found != tc.committed {
				t.Fatalf("after re-sync Get(x) found=%v err=%v, want found=%v (the log decides)", found, err, tc.committed)
			}
			if _, found, _ := p.Get(ctx, []byte("y")); found {
				t.Fatal("y was never appended but is visible")
			}
			if _, err := p.Upsert(ctx, entries("z", "3")); err != nil {
				t.Fatalf("partition does not serve after re-sync: %v", err)
			}
		})
	}
}

// Restart: a new partition on an empty store replays everything; one on the
// old store replays only what the store had not applied.
func TestRestartRecovers(t *testing.T) {
	l := newFakeLog()
	st := store.NewMemory()
	p := Start(testConfig(l, st))
	waitServing(t, p)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		if _, err := p.Upsert(ctx, entries(fmt.Sprint("k", i), fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := p.Remove(ctx, []byte("k7")); err != nil {
		t.Fatal(err)
	}
	p.Close()

	last, _ := st.Clock()
	for run, st := range []store.Store{store.NewMemory(), reopened(t, st)} {
		cfg := testConfig(l, st)
		p := startServing(t, cfg)
		for i := 0; i < 50; i++ {
			v, found, err := p.Get(ctx, []byte(fmt.Sprint("k", i)))
			if err != nil || found != (i != 7) || (found && string(v.Data) != fmt.Sprint(i)) {
				t.Fatalf("k%d after restart: %q found=%v err=%v", i, v.Data, found, err)
			}
		}
		// Versions go on from the replayed ones; the clock starts above them.
		res, err := p.Upsert(ctx, entries("fresh", fmt.Sprint(run)))
		if err != nil || res[0].Version != uint64(1+run) || res[0].Timestamp <= last {
			t.Fatalf("write after restart: %+v %v (clock before restart %d)", res, err, last)
		}
		p.Close()
	}
}

// reopened gives a usable copy of a (possibly closed) memory store.
func reopened(t *testing.T, st store.Store) store.Store {
	m := store.NewMemory()
	offs, _ := st.Offsets()
	ingest, _ := st.IngestOffsets()
	c, _ := st.Clock()
	var cs []store.Change
	_ = st.Each(func(k []byte, v store.Value) bool {
		cs = append(cs, store.Change{Key: k, Value: v.Data, Version: v.Version, Timestamp: v.Timestamp})
		return true
	})
	if err := m.Apply(store.Batch{Changes: cs, Offsets: offs, Ingest: ingest, Clock: c}); err != nil {
		t.Fatal(err)
	}
	return m
}

// A full window pauses intake; a full inbox answers ErrInboxFull at once.
func TestBackpressure(t *testing.T) {
	l := newFakeLog()
	l.gate = make(chan appendCall)
	cfg := testConfig(l, store.NewMemory())
	cfg.InboxSize, cfg.WindowSize = 1, 1
	p := startServing(t, cfg)
	ctx := context.Background()
	errs := make(chan error, 2)
	go func() { _, err := p.Upsert(ctx, entries("a", "1")); errs <- err }()
	call := <-l.gate // "a" is held: the window (1) is full, intake pauses
	go func() { _, err := p.Upsert(ctx, entries("b", "2")); errs <- err }()
	waitFor(t, func() bool { return p.InboxLen() == 1 })
	if _, err := p.Upsert(ctx, entries("c", "3")); !errors.Is(err, ErrInboxFull) {
		t.Fatalf("third request: %v, want ErrInboxFull", err)
	}
	call.answer <- appendAnswer{commit: true}
	(<-l.gate).answer <- appendAnswer{commit: true}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, found, _ := p.Get(ctx, []byte("c")); found {
		t.Fatal("a request refused with ErrInboxFull was applied")
	}
}

func TestRestoringAnswersUnavailable(t *testing.T) {
	l := newFakeLog()
	cfg := testConfig(l, store.NewMemory())
	release := make(chan struct{})
	cfg.Replay = func(ctx context.Context, from map[int32]int64, fn func(changelog.Batch) error) (map[int32]int64, error) {
		<-release
		return l.replay(ctx, from, fn)
	}
	p := Start(cfg)
	defer p.Close()
	_, err := p.Upsert(context.Background(), entries("a", "1"))
	var re *RestoringError
	if !errors.As(err, &re) || !IsUnavailable(err) || re.Partition != 1 {
		t.Fatalf("err = %v, want RestoringError", err)
	}
	close(release)
	waitServing(t, p)
	if _, err := p.Upsert(context.Background(), entries("a", "1")); err != nil {
		t.Fatal(err)
	}
}

func TestRejectsBadInputWithoutChange(t *testing.T) {
	cfg := testConfig(newFakeLog(), store.NewMemory())
	cfg.Range = keyspace.Range{From: 0, To: 2} // slots 2 and 3 belong elsewhere
	p := startServing(t, cfg)
	ctx := context.Background()
	var other string
	for i := 0; ; i++ {
		if k := fmt.Sprint("key", i); !cfg.Range.Contains(keyspace.Slot([]byte(k), cfg.Slots)) {
			other = k
			break
		}
	}
	mine := "key-mine"
	for !cfg.Range.Contains(keyspace.Slot([]byte(mine), cfg.Slots)) {
		mine += "x"
	}
	if _, err := p.Upsert(ctx, entries(mine, "1", other, "2")); !errors.Is(err, ErrWrongPartition) {
		t.Fatalf("foreign key: %v", err)
	}
	if _, err := p.Upsert(ctx, entries(mine, "1", "", "2")); !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("empty key: %v", err)
	}
	if _, _, err := p.Get(ctx, make([]byte, pipeline.MaxKeyBytes+1)); !errors.Is(err, pipeline.ErrInvalid) {
		t.Fatalf("long key: %v", err)
	}
	if _, found, _ := p.Get(ctx, []byte(mine)); found {
		t.Fatal("a rejected batch was partly applied")
	}
}

// Close lets the group in flight finish, so its request gets its true
// outcome; a request never appended fails with a retry-safe ErrStopped.
func TestCloseDrainsTheGroupInFlight(t *testing.T) {
	l := newFakeLog()
	l.gate = make(chan appendCall)
	p := startServing(t, testConfig(l, store.NewMemory()))
	ctx := context.Background()
	errs := make(chan error, 2)
	go func() { _, err := p.Upsert(ctx, entries("inflight", "1")); errs <- err }()
	call := <-l.gate
	go func() { _, err := p.Upsert(ctx, entries("open", "2")); errs <- err }()
	waitFor(t, func() bool { return p.InboxLen() == 0 })
	time.Sleep(10 * time.Millisecond)
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	if err := <-errs; !errors.Is(err, ErrStopped) || errors.Is(err, changelog.ErrCommitUnknown) {
		t.Fatalf("the never-appended request: %v, want a plain ErrStopped", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned before the group in flight finished")
	case <-time.After(20 * time.Millisecond):
	}
	call.answer <- appendAnswer{commit: true}
	if err := <-errs; err != nil {
		t.Fatalf("the request in flight committed but got %v", err)
	}
	<-closed
}

// Past its lease, a read of a committed value waits for a commit (a
// heartbeat) that proves the partition still owns its slots; if that commit is
// refused (a newer owner fenced it), the read fails instead of answering from
// a state the new owner may have moved past.
func TestLeaseExpiredReadsNeedACommit(t *testing.T) {
	l := newFakeLog()
	cfg := testConfig(l, store.NewMemory())
	cfg.Lease = 50 * time.Millisecond
	p := startServing(t, cfg)
	ctx := context.Background()
	if _, err := p.Upsert(ctx, entries("k", "v")); err != nil {
		t.Fatal(err)
	}
	// Within the lease: answered from the store, no append.
	l.gate = make(chan appendCall)
	if v, _, err := p.Get(ctx, []byte("k")); err != nil || string(v.Data) != "v" {
		t.Fatalf("Get within the lease: %q %v", v.Data, err)
	}
	time.Sleep(60 * time.Millisecond)
	got := make(chan error, 1)
	go func() { _, _, err := p.Get(ctx, []byte("k")); got <- err }()
	call := <-l.gate
	if len(call.recs) != 1 || string(call.recs[0].Key) != "\x00sluice/heartbeat/1" {
		t.Fatalf("the read past its lease appended %d records, not a heartbeat", len(call.recs))
	}
	select {
	case err := <-got:
		t.Fatalf("the read answered before its heartbeat committed: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	call.answer <- appendAnswer{err: fmt.Errorf("%w: fenced", changelog.ErrNotCommitted)}
	if err := <-got; !errors.Is(err, ErrAppendFailed) {
		t.Fatalf("a read whose heartbeat was refused: %v, want an error", err)
	}
}

// An EVENTUAL read (ReadCommitted) never sees a value whose transaction has
// not committed; it sees it once it has.
func TestReadCommittedNeverSeesUncommitted(t *testing.T) {
	l := newFakeLog()
	p := startServing(t, testConfig(l, store.NewMemory()))
	ctx := context.Background()
	if _, err := p.Upsert(ctx, entries("k", "old")); err != nil {
		t.Fatal(err)
	}
	l.gate = make(chan appendCall)
	done := make(chan error, 1)
	go func() { _, err := p.Upsert(ctx, entries("k", "new")); done <- err }()
	call := <-l.gate
	if v, _, err := p.ReadCommitted([]byte("k")); err != nil || string(v.Data) != "old" {
		t.Fatalf("while the write is in flight: %q %v", v.Data, err)
	}
	slot := keyspace.Slot([]byte("k"), 4)
	applied := p.Applied()[slot]
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := p.WaitApplied(waitCtx, slot, applied+1); err == nil {
		t.Fatal("WaitApplied returned for an offset not yet applied")
	}
	call.answer <- appendAnswer{commit: true}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.WaitApplied(ctx, slot, applied+1); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := p.ReadCommitted([]byte("k")); string(v.Data) != "new" {
		t.Fatalf("after the commit: %q", v.Data)
	}
}

func TestIncrementAndCompareAndSet(t *testing.T) {
	p := startServing(t, testConfig(newFakeLog(), store.NewMemory()))
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		if n, _, err := p.Increment(ctx, []byte("c"), 2); err != nil || n != int64(2*i) {
			t.Fatalf("increment %d: %d %v", i, n, err)
		}
	}
	one, nine := uint64(1), uint64(9)
	_, err := p.Upsert(ctx, []pipeline.Entry{{Key: []byte("a"), Value: []byte("x")}, {Key: []byte("c"), Value: []byte("y"), Expected: &nine}})
	var mm *VersionMismatchError
	if !errors.As(err, &mm) || mm.Current != 5 || mm.Expected != 9 {
		t.Fatalf("CAS with a wrong version: %v", err)
	}
	if _, found, _ := p.Get(ctx, []byte("a")); found {
		t.Fatal("a batch whose CAS failed was partly applied")
	}
	if _, err := p.Upsert(ctx, []pipeline.Entry{{Key: []byte("c"), Value: []byte("y"), Expected: &one}}); err == nil {
		t.Fatal("CAS expecting version 1 of a key at version 5 applied")
	}
}

// A refusal rests on what the request read, like a Get: a compare-and-set
// refused against a version that is not durable yet, or an increment of a
// value not durable yet, is answered only once that version commits — and if
// its append fails, the request fails too, never a refusal of a state that
// never was. (The linearizability campaign found a CAS refused against a
// write whose transaction was then fenced.)
func TestRefusalsWaitForTheValueTheyRead(t *testing.T) {
	zero := uint64(0)
	for _, tc := range []struct {
		name   string
		commit bool
		refuse func(p *Partition) error
		want   func(err error) bool
	}{
		{"cas/aborted", false, func(p *Partition) error {
			_, err := p.Upsert(context.Background(), []pipeline.Entry{{Key: []byte("k"), Value: []byte("v2"), Expected: &zero}})
			return err
		}, func(err error) bool { return errors.Is(err, ErrAppendFailed) }},
		{"cas/committed", true, func(p *Partition) error {
			_, err := p.Upsert(context.Background(), []pipeline.Entry{{Key: []byte("k"), Value: []byte("v2"), Expected: &zero}})
			return err
		}, func(err error) bool { var mm *VersionMismatchError; return errors.As(err, &mm) && mm.Current == 1 }},
		{"increment/aborted", false, func(p *Partition) error {
			_, _, err := p.Increment(context.Background(), []byte("k"), 1)
			return err
		}, func(err error) bool { return errors.Is(err, ErrAppendFailed) }},
		{"increment/committed", true, func(p *Partition) error {
			_, _, err := p.Increment(context.Background(), []byte("k"), 1)
			return err
		}, func(err error) bool { var ni *NotIntegerError; return errors.As(err, &ni) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newFakeLog()
			l.gate = make(chan appendCall)
			p := startServing(t, testConfig(l, store.NewMemory()))
			wrote := make(chan error, 1)
			go func() { _, err := p.Upsert(context.Background(), entries("k", "v1")); wrote <- err }()
			inFlight := <-l.gate // k = v1 (version 1) is in flight, not durable
			refused := make(chan error, 1)
			go func() { refused <- tc.refuse(p) }()
			select {
			case err := <-refused:
				inFlight.answer <- appendAnswer{commit: true} // let the partition close
				t.Fatalf("answered %v before the version it read was durable", err)
			case <-time.After(50 * time.Millisecond):
			}
			if tc.commit {
				inFlight.answer <- appendAnswer{commit: true}
			} else {
				inFlight.answer <- appendAnswer{err: errBoom}
			}
			<-wrote
			if err := <-refused; !tc.want(err) {
				t.Fatalf("answer %v", err)
			}
		})
	}
}
