package kafkaread

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// fetcher keeps one fetch in flight per broker, each for every slot that
// broker leads (reader.fetch says why one request, not one per slot), and
// hands the answers that move a slot, or fail, to follow.
type fetcher struct {
	r       *reader
	pos     map[int32]int64 // next offset of each slot not done
	target  map[int32]int64 // where each slot is done; -1: never (tailing)
	failing map[int32]int   // consecutive failed fetches
	retryAt map[int32]time.Time
	// alone are slots that came back empty, past a gap, in an answer that
	// had data for others: the gap is read again in a fetch of its own,
	// where an empty answer is a whole one.
	alone    map[int32]bool
	fetching map[int32]bool // slots in a fetch in flight
	busy     map[int32]bool // brokers with a fetch in flight
	wg       sync.WaitGroup // the fetches in flight
}

// answer is one fetch's answers, from broker leader.
type answer struct {
	leader int32
	got    []fetched
}

func newFetcher(r *reader, pos, targets map[int32]int64) *fetcher {
	f := &fetcher{r: r, pos: pos, target: make(map[int32]int64, len(pos)), failing: map[int32]int{},
		retryAt: map[int32]time.Time{}, alone: map[int32]bool{}, fetching: map[int32]bool{}, busy: map[int32]bool{}}
	for slot := range pos {
		t, ok := targets[slot]
		if !ok {
			t = -1
		}
		f.target[slot] = t
	}
	return f
}

// run fetches until every slot is done or ctx ends.
func (f *fetcher) run(ctx context.Context, out chan<- []fetched) {
	answers := make(chan answer)
	defer f.wg.Wait() // ctx has ended: the fetches in flight end too
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for len(f.pos) > 0 {
		wake, failed := f.start(ctx, answers)
		if len(failed) > 0 {
			if !f.deliver(ctx, out, failed) {
				return
			}
			// Their retries, which deliver just scheduled: with no fetch
			// in flight nothing else would wake the loop (a tail whose
			// leader lookups failed, a node cut off from its brokers,
			// waited for ever).
			for _, a := range failed {
				if at, ok := f.retryAt[a.slot]; ok && (wake.IsZero() || at.Before(wake)) {
					wake = at
				}
			}
		}
		var retry <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(max(time.Until(wake), time.Millisecond))
			retry = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case a := <-answers:
			delete(f.busy, a.leader)
			for _, got := range a.got {
				delete(f.fetching, got.slot)
			}
			if !f.deliver(ctx, out, a.got) {
				return
			}
		case <-retry:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// start sends a fetch to every broker that has none in flight and leads a
// slot ready to be fetched. It returns when the next slot waiting out a
// backoff is due, and the answers of slots whose leader is unknown.
func (f *fetcher) start(ctx context.Context, answers chan<- answer) (wake time.Time, failed []fetched) {
	now := time.Now()
	type request struct {
		id    [16]byte
		pos   map[int32]int64
		alone bool
	}
	reqs := map[int32]*request{}
	for slot, p := range f.pos {
		if f.fetching[slot] {
			continue
		}
		if at := f.retryAt[slot]; at.After(now) {
			if wake.IsZero() || at.Before(wake) {
				wake = at
			}
			continue
		}
		id, leader, err := f.r.leader(ctx, slot)
		if err != nil {
			failed = append(failed, fetched{slot: slot, from: p, next: p, err: fmt.Errorf("metadata: %w", err)})
			continue
		}
		if f.busy[leader] {
			continue
		}
		rq := reqs[leader]
		if rq == nil {
			rq = &request{id: id, pos: map[int32]int64{}, alone: f.alone[slot]}
			reqs[leader] = rq
		} else if rq.alone || f.alone[slot] {
			continue // in the broker's next fetch
		}
		rq.pos[slot] = p
	}
	for leader, rq := range reqs {
		f.busy[leader] = true
		for slot := range rq.pos {
			f.fetching[slot] = true
			delete(f.alone, slot)
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			got := f.r.fetch(ctx, rq.id, leader, rq.pos)
			select {
			case answers <- answer{leader: leader, got: got}:
			case <-ctx.Done():
			}
		}()
	}
	return wake, failed
}

// deliver settles the answers of one fetch: it moves the slots they moved,
// schedules the retries of those that failed and hands to out every answer
// that moved its slot or failed (or ends a run of failures, so that follow
// forgets why the slot was stalled). It returns false once ctx ended.
func (f *fetcher) deliver(ctx context.Context, out chan<- []fetched, got []fetched) bool {
	send := got[:0:0]
	for _, a := range got {
		pos, ok := f.pos[a.slot]
		if !ok {
			continue
		}
		target := f.target[a.slot]
		if a.err == nil && a.empty {
			switch {
			case a.lso > pos && a.whole:
				// The broker has nothing committed in [pos, lso): the
				// records there were compacted away or aborted with no
				// marker after them. A read_committed reader is past them.
				a.next = a.lso
			case a.lso > pos:
				f.alone[a.slot] = true
			case target >= 0:
				a.err = fmt.Errorf("the slot's last stable offset is %d, below the target", a.lso)
			}
		}
		if target >= 0 && a.next > target {
			a.next = target
			keep := a.records[:0]
			for _, rec := range a.records {
				if rec.Offset < target {
					keep = append(keep, rec)
				}
			}
			a.records = keep
		}
		if a.err != nil || a.next > pos || f.failing[a.slot] > 0 {
			send = append(send, a)
		}
		if a.err != nil {
			f.failing[a.slot]++
			f.retryAt[a.slot] = time.Now().Add(backoff(f.failing[a.slot]))
			continue
		}
		delete(f.failing, a.slot)
		delete(f.retryAt, a.slot)
		f.pos[a.slot] = a.next
		if target >= 0 && a.next >= target {
			delete(f.pos, a.slot)
		}
	}
	if len(send) == 0 {
		return true
	}
	select {
	case out <- send:
		return true
	case <-ctx.Done():
		return false
	}
}
