package kafkaread

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"
)

// follow reads the slots of reached (a fetcher: one fetch in flight per
// broker) and hands what they read to fn, updating reached. With targets it returns once every
// slot has reached its target; with targets nil (tailing) it reads until ctx
// ends.
func follow(ctx context.Context, r *reader, cfg readCfg, reached, targets map[int32]int64, fn func(Step) error) error {
	tailing := targets == nil
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan []fetched)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		cfg.onStall(nil)
	}()
	now := time.Now()
	slots := make(map[int32]*slotState)
	pos := make(map[int32]int64, len(reached))
	for slot, p := range reached {
		target, ok := targets[slot]
		if !tailing && !ok {
			continue
		}
		if tailing {
			target = -1
		}
		slots[slot] = &slotState{target: target, moved: now}
		pos[slot] = p
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		newFetcher(r, pos, maps.Clone(targets)).run(ctx, out)
	}()
	stalls := stallWatch{cfg: cfg, slots: slots, reached: reached}
	tick := time.NewTicker(max(min(cfg.stallAfter/4, time.Second), time.Millisecond))
	defer tick.Stop()
	for tailing || len(targets) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			stalls.check(time.Now())
			continue
		case fs := <-out:
			b := Step{Reached: make(map[int32]int64), HighWatermarks: make(map[int32]int64)}
			if err := stalls.add(&b, fs); err != nil {
				return err
			}
		drain: // what else is ready goes in the same step
			for b.Bytes < cfg.maxStepBytes {
				select {
				case fs := <-out:
					if err := stalls.add(&b, fs); err != nil {
						return err
					}
				default:
					break drain
				}
			}
			if len(b.Reached) == 0 {
				continue
			}
			for slot, target := range targets {
				off := reached[slot]
				if r, ok := b.Reached[slot]; ok {
					off = r
				}
				b.Lag += target - off
			}
			if err := fn(b); err != nil {
				return err
			}
			now := time.Now()
			for slot, off := range b.Reached {
				reached[slot] = off
				slots[slot].moved, slots[slot].why = now, ""
				if t, ok := targets[slot]; ok && off >= t {
					delete(targets, slot)
					delete(slots, slot)
				}
			}
			stalls.check(now)
		}
	}
	return nil
}

// backoff is the wait before the n-th retry of a failing fetch.
func backoff(n int) time.Duration {
	return min(time.Duration(1<<min(n-1, 6))*100*time.Millisecond, 5*time.Second)
}

// slotState is what follow knows of a slot: its target (-1 while tailing),
// when it last moved, and why not, if a fetch said so.
type slotState struct {
	target int64
	lso    int64 // the last stable offset last seen, while tailing
	moved  time.Time
	why    string
	warned time.Time
}

// stallWatch notices slots that make no progress, logs why and reports the
// one waited for longest.
type stallWatch struct {
	cfg      readCfg
	slots    map[int32]*slotState
	reached  map[int32]int64
	reported bool
}

// add puts the answers of one fetch into b, or notes why their slots did
// not move.
func (w *stallWatch) add(b *Step, fs []fetched) error {
	for _, f := range fs {
		if err := w.addOne(b, f); err != nil {
			return err
		}
	}
	return nil
}

func (w *stallWatch) addOne(b *Step, f fetched) error {
	s, ok := w.slots[f.slot]
	if !ok {
		return nil // done meanwhile
	}
	if f.err != nil {
		if f.fatal {
			return fmt.Errorf("kafkaread: reading slot %d: %w", f.slot, f.err)
		}
		s.why = "fetch failed: " + f.err.Error()
		return nil
	}
	s.why = ""
	s.lso = max(s.lso, f.lso)
	if f.next > f.from {
		b.Records = append(b.Records, f.records...)
		b.Bytes += f.bytes
		b.Reached[f.slot] = f.next
		b.HighWatermarks[f.slot] = f.hwm
	}
	return nil
}

// check reports the slots that have not moved for cfg.stallAfter.
func (w *stallWatch) check(now time.Time) {
	var worst *Stall
	ids := make([]int32, 0, len(w.slots))
	for slot := range w.slots {
		ids = append(ids, slot)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, slot := range ids {
		s := w.slots[slot]
		pos, target := w.reached[slot], s.target
		if target < 0 { // tailing: behind only when the log holds more
			target = s.lso
			if pos >= target && s.why == "" {
				s.moved = now
				continue
			}
		}
		idle := now.Sub(s.moved)
		if idle < w.cfg.stallAfter {
			continue
		}
		why := s.why
		if why == "" {
			why = "the broker has answered nothing past this position"
		}
		st := &Stall{Slot: slot, Position: pos, Target: target, For: idle, Reason: why}
		if now.Sub(s.warned) >= w.cfg.stallAfter {
			s.warned = now
			w.cfg.log.Warn().Int32("slot", slot).Int64("position", pos).Int64("target", target).
				Dur("for", idle).Str("reason", why).Msg("kafka read makes no progress; retrying")
		}
		if worst == nil || idle > worst.For {
			worst = st
		}
	}
	if worst != nil {
		w.reported = true
		w.cfg.onStall(worst)
	} else if w.reported {
		w.reported = false
		w.cfg.onStall(nil)
	}
}
