package core

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicedb/sluice/clock"
	"github.com/sluicedb/sluice/kv"
)

// The harness's store (driver.go's Store): a map.

func (h *harness) Apply(b kv.Write) error {
	if err := h.failNext; err != nil {
		h.failNext = nil
		return err
	}
	for _, c := range b.Changes {
		h.store[string(c.Key)] = c.Read()
	}
	for s, o := range b.Offsets {
		h.offsets[s] = o
	}
	return nil
}

func (h *harness) GetMany(keys [][]byte) ([]kv.Read, error) {
	out := make([]kv.Read, len(keys))
	for i, k := range keys {
		if h.prefetched[string(k)] {
			fmt.Fprintf(h.out, "read %s again\n", k)
		}
		out[i] = h.store[string(k)]
	}
	return out, nil
}

// The harness's effects: each prints what the Ready asked for.

func (h *harness) Now() time.Time { return h.now }
func (h *harness) StopIngest()    { fmt.Fprintln(h.out, "stop-ingest") }
func (h *harness) Reply(r Reply)  { fmt.Fprintf(h.out, "reply %s\n", replyString(r)) }

func (h *harness) Append(g *Group) {
	if h.inflight != nil {
		h.t.Fatal("a second group in flight")
	}
	h.inflight = g
	fmt.Fprintf(h.out, "append %s\n", groupString(g))
}

func (h *harness) Queued(g *Group)                { fmt.Fprintf(h.out, "apply g%d\n", g.N) }
func (h *harness) Stored(*Group, kv.Write, error) {}

func (h *harness) Restore() {
	fmt.Fprintln(h.out, "restore")
	// The flusher of a group in flight stops; its result may still come.
	h.orphan, h.inflight = h.inflight, nil
}

func (h *harness) StartIngest(s *IngestStart) {
	h.ingestGen = s.Gen
	fmt.Fprintf(h.out, "start-ingest gen %d from %s\n", s.Gen, offsetsString(s.From))
}

func (h *harness) WakeAt(t time.Time) { fmt.Fprintf(h.out, "wake in %s\n", t.Sub(h.now)) }

func (h *harness) Stop()    { fmt.Fprintln(h.out, "stop") }
func (h *harness) Carried() {}

func replyString(r Reply) string {
	id := r.Handle.(string)
	if r.Err != nil {
		return id + ": error: " + r.Err.Error()
	}
	var parts []string
	for _, w := range r.Results {
		if w.Offset < 0 {
			parts = append(parts, "dropped")
			continue
		}
		parts = append(parts, fmt.Sprintf("v%d@%d/%d", w.Version, w.Slot, w.Offset))
	}
	for _, rd := range r.Reads {
		parts = append(parts, readString("", rd))
	}
	if r.Counter != 0 {
		parts = append(parts, fmt.Sprintf("counter=%d", r.Counter))
	}
	switch {
	case len(r.Results) == 0 && r.Reads == nil:
		parts = append(parts, readString("", r.Read))
	case r.Read.Found:
		parts = append(parts, "existed")
	}
	return id + ": ok " + strings.Join(parts, " ")
}

func readString(k string, r kv.Read) string {
	if k != "" {
		k += "="
	}
	if !r.Found {
		if r.Value.Version > 0 {
			return fmt.Sprintf("%s(absent v%d)", k, r.Value.Version)
		}
		return k + "(absent)"
	}
	s := fmt.Sprintf("%s%s v%d", k, r.Value.Data, r.Value.Version)
	if r.Value.ExpiresAt != 0 {
		s += " ttl"
	}
	return s
}

func groupString(g *Group) string {
	var parts []string
	for _, r := range g.Records {
		switch r.Kind {
		case kv.KindMark:
			parts = append(parts, fmt.Sprintf("mark %d/%d", r.Ingest.Slot, r.Ingest.Offset))
		case kv.KindHeartbeat:
			parts = append(parts, "heartbeat")
		default:
			c := r.Change
			s := fmt.Sprintf("%s=%s v%d", c.Key, c.Value, c.Version)
			if c.Remove {
				s = fmt.Sprintf("%s removed v%d", c.Key, c.Version)
			}
			if c.ExpiresAt != 0 {
				s += " ttl=" + time.UnixMilli(int64(c.ExpiresAt)).Sub(clock.Wall(c.Timestamp)).String()
			}
			if r.Ingest != nil {
				s += fmt.Sprintf(" from %d/%d", r.Ingest.Slot, r.Ingest.Offset)
			}
			parts = append(parts, s)
		}
	}
	for _, d := range g.DeadLetters {
		parts = append(parts, fmt.Sprintf("dlq %d/%d (%s)", d.Record.Slot, d.Record.Offset, d.Reason))
	}
	for _, f := range g.Forwards {
		parts = append(parts, fmt.Sprintf("forward %d/%d to slot %d", f.Record.Slot, f.Record.Offset, f.Slot))
	}
	return fmt.Sprintf("g%d: %s", g.N, strings.Join(parts, "; "))
}

func offsetsString(m map[int32]int64) string {
	slots := make([]int32, 0, len(m))
	for s := range m {
		slots = append(slots, s)
	}
	slices.Sort(slots)
	var parts []string
	for _, s := range slots {
		parts = append(parts, fmt.Sprintf("%d/%d", s, m[s]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
