// Package kfakerepair finishes, before the embedded broker (franz-go's
// kfake) starts on its data directory, what a kill -9, a power cut or a
// full disk left half done there, so that kfake's own crash recovery finds
// nothing it would get wrong:
//
//   - a segment is cut at its first torn or corrupt batch (a short write,
//     a bad CRC), as kfake's loader would cut it, before anything is
//     appended to it (segments.go);
//   - a partition kfake may have written since it last closed it cleanly
//     is moved past a gap of unused offsets, so that no offset a crash may
//     have taken back is given to a new record (gap.go; the node calls
//     Opening before it starts kfake and Closed after a clean close);
//   - a transaction the log leaves open is committed where the
//     coordinator had decided to commit it, and aborted everywhere else,
//     each with its marker and the coordinator's record of it in pids.log
//     (txn.go, pids.go);
//   - a segment index out of step with its segment is rebuilt from the
//     segment (index.go).
//
// A repair of a repaired directory changes nothing.
//
//	rep, err := kfakerepair.Repair(dir, time.Now())
//	for _, line := range rep.Lines() { log.Print(line) }
package kfakerepair

import (
	"fmt"
	"os"
	"time"
)

// Report says what a Repair changed, one line per change.
type Report struct {
	Truncated []string // segments cut at a torn or corrupt batch
	Skipped   []string // offsets left unused after a crash: "<topic>-<p>: offsets A to B"
	Ended     []string // transactions ended: "<topic>-<p>: producer P epoch E committed|aborted"
	Indexes   []string // segment indexes rebuilt
}

// Lines is the report for a log, one change a line.
func (r Report) Lines() []string {
	var out []string
	for _, s := range r.Truncated {
		out = append(out, "cut a torn or corrupt tail: "+s)
	}
	for _, s := range r.Skipped {
		out = append(out, "left unused the offsets a crash may have taken back: "+s)
	}
	for _, s := range r.Ended {
		out = append(out, "ended a transaction a crash had left open: "+s)
	}
	for _, s := range r.Indexes {
		out = append(out, "rebuilt a segment index out of step with its segment: "+s)
	}
	return out
}

// Repair repairs kfake's data directory dir; now stamps the markers of
// aborted transactions. It must run while no broker has dir open.
func Repair(dir string, now time.Time) (Report, error) {
	var rep Report
	parts, truncated, err := readPartitions(dir)
	rep.Truncated = truncated
	if err != nil {
		return rep, fmt.Errorf("kfakerepair: reading the segments: %w", err)
	}
	state := readState(dir)
	rep.Skipped, err = skipTakenBack(parts, state, now.UnixMilli())
	if err != nil {
		return rep, fmt.Errorf("kfakerepair: leaving the offsets a crash took back unused: %w", err)
	}
	rep.Ended, err = finishTransactions(dir, parts, now)
	if err != nil {
		return rep, fmt.Errorf("kfakerepair: ending open transactions: %w", err)
	}
	rep.Indexes, err = repairIndexes(dir)
	if err != nil {
		return rep, fmt.Errorf("kfakerepair: rebuilding segment indexes: %w", err)
	}
	if _, err := os.Stat(dir); err == nil && state != stateRepaired {
		if err := writeState(dir, stateRepaired); err != nil {
			return rep, fmt.Errorf("kfakerepair: noting the repair: %w", err)
		}
	}
	return rep, nil
}
