package bench

import (
	"fmt"
	"io"
	"sort"
	"sync"

	"google.golang.org/grpc/status"
)

// maxCauses bounds the distinct errors a run keeps; later ones are counted
// under "other errors".
const maxCauses = 20

// Cause is one kind of error a run met, and how often.
type Cause struct {
	Error string `json:"error"` // "Code: message"
	Count int64  `json:"count"`
}

// causes counts a run's errors by code and message.
type causes struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *causes) add(err error) {
	st := status.Convert(err)
	msg := st.Message()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	key := fmt.Sprintf("%s: %s", st.Code(), msg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	if _, ok := c.n[key]; !ok && len(c.n) >= maxCauses {
		key = "other errors"
	}
	c.n[key]++
}

// list is the causes, the most frequent first.
func (c *causes) list() []Cause {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Cause, 0, len(c.n))
	for k, n := range c.n {
		out = append(out, Cause{Error: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Error < out[j].Error
	})
	return out
}

// ErrorsDominate is the rule by which a run failed: more of its calls
// failed than succeeded. `sluice bench` then exits non-zero.
func (r *Result) ErrorsDominate() bool { return r.Errors > 0 && r.Errors >= r.Ops }

// RateReached is the share of Config.Rate the run offered and completed
// (1 when no rate was asked).
func (r *Result) RateReached() float64 {
	if r.Config.Rate <= 0 {
		return 1
	}
	return r.OpsPerSec / r.Config.Rate
}

// printProblems writes the errors by cause and a warning when the rate
// asked for was not reached.
func (r *Result) printProblems(w io.Writer) {
	if r.Errors > 0 {
		fmt.Fprintf(w, "errors      %d (%.1f%% of calls), by cause:\n", r.Errors, 100*float64(r.Errors)/float64(r.Errors+r.Ops))
		for _, c := range r.Causes {
			fmt.Fprintf(w, "  %8d  %s\n", c.Count, c.Error)
		}
	}
	// 95 %: a paced run's schedule ends with its last calls in flight.
	if got := r.RateReached(); got < 0.95 {
		fmt.Fprintf(w, "warning: --rate %g not reached: %.0f calls/s (%.0f%%); the latencies count each call from when it was due,\n"+
			"         so they include the wait for a free client (raise --concurrency, or the cluster is at its limit)\n", r.Config.Rate, r.OpsPerSec, 100*got)
	}
}
