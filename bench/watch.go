package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/keyspace"
)

// WatchResult is what a watch run saw: every acknowledged write must reach
// the watch, once, in version order per key; Latency is from a write's
// acknowledgement to its event's delivery (zero when the event came first).
type WatchResult struct {
	Config Config `json:"config"`
	// Acked writes, and Seen of them; Missing were acknowledged and never
	// delivered within the drain; Unknown are events of no write of the
	// run's that was acknowledged (writes of unknown outcome); OutOfOrder
	// are events whose version is not above the key's previous one, and
	// WrongVersion events of an acknowledged write with another version.
	Acked, Seen, Missing, Unknown, OutOfOrder, WrongVersion int
	// Slots is how many of the cluster's slots the writes covered.
	Slots, SlotCount int
	// Latency percentiles (p50, p90, p99, p99.9) and max.
	P50, P90, P99, P999, Max time.Duration
	Elapsed                  time.Duration
}

// watchDrain bounds how long a run waits, after its last write, for the
// events of acknowledged writes.
const watchDrain = 60 * time.Second

// WatchLatency measures Watch end to end: cfg.Concurrency writers upsert
// single keys with short unique values (cfg.Rate writes a second in all;
// 0: as fast as they go)
// over cfg.Keys keys that cover every slot, for cfg.Duration, while one
// watch of their prefix, started before them, records when each change
// arrives.
func WatchLatency(ctx context.Context, cfg Config, progress io.Writer) (*WatchResult, error) {
	if cfg.Workload == "" {
		cfg.Workload = "watch"
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c, err := client.Dial(cfg.Addrs, cfg.Client...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var slotCount int32 // from the watch's first token, which names every slot
	prefix := fmt.Sprintf("watchbench-%08x/", rand.Uint32())
	key := func(i int) []byte { return fmt.Appendf(nil, "%s%07d", prefix, i) }

	type event struct {
		at      time.Time
		version uint64
	}
	var (
		mu      sync.Mutex
		events  = map[string]event{}  // by value
		last    = map[string]uint64{} // version by key
		res     = &WatchResult{Config: cfg}
		started = make(chan struct{})
		once    sync.Once
	)
	wctx, endWatch := context.WithCancel(ctx)
	defer endWatch()
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- c.Watch(wctx, []byte(prefix), client.WatchOptions{}, func(b client.WatchBatch) error {
			now := time.Now()
			once.Do(func() {
				if b.Session != nil {
					slotCount = int32(len(b.Session.Offsets))
				}
				close(started)
			})
			mu.Lock()
			defer mu.Unlock()
			for _, ch := range b.Changes {
				k := string(ch.Key)
				if ch.Version <= last[k] {
					res.OutOfOrder++
				}
				last[k] = ch.Version
				events[string(ch.Value)] = event{at: now, version: ch.Version}
			}
			return nil
		})
	}()
	select {
	case <-started:
	case err := <-watchErr:
		return nil, fmt.Errorf("bench: watch: %w", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	type write struct {
		value   string
		version uint64
		at      time.Time
	}
	var (
		wmu    sync.Mutex
		acked  []write
		slots  = map[int32]bool{}
		wg     sync.WaitGroup
		begin  = time.Now()
		finish = begin.Add(cfg.Duration)
	)
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(begin.UnixNano())))
			var every time.Duration
			if cfg.Rate > 0 {
				every = time.Duration(float64(cfg.Concurrency) / cfg.Rate * float64(time.Second))
			}
			next := begin.Add(time.Duration(rng.Int64N(int64(max(every, time.Millisecond)))))
			for i := 0; ; i++ {
				if every > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(every)
				}
				if time.Now().After(finish) || ctx.Err() != nil {
					return
				}
				k := key(rng.IntN(cfg.Keys))
				v := fmt.Sprintf("w%d-%d", w, i)
				res, err := c.Upsert(ctx, client.Entry{Key: k, Value: []byte(v)})
				at := time.Now()
				if err != nil {
					continue // of unknown outcome: its event, if any, counts as Unknown
				}
				wmu.Lock()
				acked = append(acked, write{value: v, version: res[0].Version, at: at})
				slots[keyspace.Slot(k, slotCount)] = true
				wmu.Unlock()
			}
		}()
	}
	wg.Wait()
	if progress != nil {
		fmt.Fprintf(progress, "bench: %d writes acknowledged; waiting for their events\n", len(acked))
	}
	seenAll := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range acked {
			if _, ok := events[w.value]; !ok {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(watchDrain); !seenAll() && time.Now().Before(deadline); {
		select {
		case err := <-watchErr:
			return nil, fmt.Errorf("bench: watch ended: %w", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	endWatch()
	if err := <-watchErr; err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("bench: watch: %w", err)
	}
	res.Elapsed = time.Since(begin)
	res.Acked, res.Slots, res.SlotCount = len(acked), len(slots), int(slotCount)
	mine := make(map[string]bool, len(acked))
	lat := make([]time.Duration, 0, len(acked))
	for _, w := range acked {
		mine[w.value] = true
		e, ok := events[w.value]
		if !ok {
			res.Missing++
			continue
		}
		res.Seen++
		if e.version != w.version {
			res.WrongVersion++
		}
		lat = append(lat, max(0, e.at.Sub(w.at)))
	}
	for v := range events {
		if !mine[v] {
			res.Unknown++
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	res.P50, res.P90, res.P99, res.P999 = pct(0.50), pct(0.90), pct(0.99), pct(0.999)
	if len(lat) > 0 {
		res.Max = lat[len(lat)-1]
	}
	return res, nil
}

// Print writes r as a few lines of text.
func (r *WatchResult) Print(w io.Writer) {
	fmt.Fprintf(w, "watch: %d writes acknowledged over %d of %d slots in %.1fs (%d writers, %.0f/s asked); %d seen, %d missing, %d out of order, %d with another version, %d of unknown writes\n",
		r.Acked, r.Slots, r.SlotCount, r.Elapsed.Seconds(), r.Config.Concurrency, r.Config.Rate, r.Seen, r.Missing, r.OutOfOrder, r.WrongVersion, r.Unknown)
	fmt.Fprintf(w, "ack → event: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		r.P50.Round(10*time.Microsecond), r.P90.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.P999.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond))
}
