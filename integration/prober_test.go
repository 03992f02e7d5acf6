package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/internal/kvmodel"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// prober sends gets and puts of keys straight to one node (no client
// routing, no retries), one call at a time, each with a 2 s deadline, and
// records every answer, also in the history (client 90) for porcupine: a
// put it answered is a write, a get it answered a read.
type prober struct {
	done     chan struct{}
	finished chan struct{}
	once     sync.Once
	mu       sync.Mutex
	res      []probe
}

// probe is one call of the prober.
type probe struct {
	op, key   string
	call, ret time.Time
	err       error
}

func startProber(t *testing.T, addr string, keys []string, h *kvmodel.History) *prober {
	dc := dataClient(t, addr)
	pr := &prober{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(pr.finished)
		for n := 0; ; n++ {
			select {
			case <-pr.done:
				return
			default:
			}
			key := keys[(n/2)%len(keys)]
			in := kvmodel.Input{Key: key}
			var out kvmodel.Output
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			start := time.Now()
			var err error
			if n%2 == 0 {
				in.Op = "get"
				var resp *sluicev1.GetResponse
				if resp, err = dc.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)}); err == nil {
					out = kvmodel.Output{OK: resp.Found, Value: string(resp.Value), Version: resp.Version}
				}
			} else {
				in.Op, in.Value = "put", fmt.Sprintf("probe-%d-%d", start.UnixNano(), n)
				var resp *sluicev1.UpsertResponse
				if resp, err = dc.Upsert(ctx, &sluicev1.UpsertRequest{Entries: []*sluicev1.Entry{{Key: []byte(key), Value: []byte(in.Value)}}}); err == nil {
					if len(resp.Results) != 1 || len(resp.Failures) > 0 {
						err = fmt.Errorf("put answered %v", resp)
					} else {
						out.Version = resp.Results[0].Version
					}
				}
			}
			ret := time.Now()
			cancel()
			switch {
			case err == nil:
				h.Add(90, in, start, out, ret)
			case in.Op == "put" && !certainlyNotApplied(err):
				h.Add(90, in, start, kvmodel.Output{Unknown: true}, ret)
			}
			pr.mu.Lock()
			pr.res = append(pr.res, probe{op: in.Op, key: key, call: start, ret: ret, err: err})
			pr.mu.Unlock()
			if err != nil {
				time.Sleep(50 * time.Millisecond) // an unreachable node fails at once
			}
		}
	}()
	t.Cleanup(pr.stop)
	return pr
}

// stop ends the prober and waits for its last call.
func (pr *prober) stop() {
	pr.once.Do(func() { close(pr.done) })
	<-pr.finished
}

func (pr *prober) results() []probe {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([]probe(nil), pr.res...)
}

// failedSince: a call of op made at or after from has failed.
func (pr *prober) failedSince(op string, from time.Time) bool {
	for _, r := range pr.results() {
		if r.op == op && !r.call.Before(from) && r.err != nil {
			return true
		}
	}
	return false
}

// summary counts the calls by op, before or after the cut, and answer code.
func (pr *prober) summary(cut time.Time) map[string]int {
	n := map[string]int{}
	for _, r := range pr.results() {
		when := "before"
		if r.call.After(cut) {
			when = "after"
		}
		n[fmt.Sprintf("%s %s the cut: %v", r.op, when, status.Code(r.err))]++
	}
	return n
}
