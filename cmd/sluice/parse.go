package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// The control commands' arguments are parsed strictly: the whole argument
// or nothing. fmt.Sscanf stopped at the first character it did not want, so
// "rm 4-8x" removed [4,8) and "rm 7.5" removed partition 7.

// parseID reads a partition id, a decimal number and nothing else.
func parseID(s string) (uint32, error) {
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, usageError(fmt.Errorf("partition id %q: want a whole number (e.g. 4) and nothing else", s))
	}
	return uint32(id), nil
}

// parseRange reads "FROM-TO" (TO exclusive), two decimal numbers and nothing
// else.
func parseRange(s string) (*sluicev1.SlotRange, error) {
	from, to, ok := strings.Cut(s, "-")
	f, errF := strconv.ParseUint(from, 10, 31)
	t, errT := strconv.ParseUint(to, 10, 31)
	if !ok || errF != nil || errT != nil {
		return nil, usageError(fmt.Errorf("slot range %q: want FROM-TO, two whole numbers and nothing else, TO exclusive (e.g. 0-4)", s))
	}
	return &sluicev1.SlotRange{From: int32(f), To: int32(t)}, nil
}

// ttlFlag is --ttl: a duration in whole seconds ("30m", "90s"), or a bare
// number of seconds ("60", as redis' EX and the ingest ttl header take it).
// A part of a second is refused, not rounded away: "1500ms" expired at 1 s.
type ttlFlag struct{ d *time.Duration }

func (f ttlFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return "0s"
	}
	return f.d.String()
}

func (ttlFlag) Type() string { return "duration" }

func (f ttlFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if n, nerr := strconv.ParseInt(s, 10, 64); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	switch {
	case err != nil:
		return fmt.Errorf("want seconds (60) or a duration (90s, 30m, 2h)")
	case d < 0 || d%time.Second != 0:
		return fmt.Errorf("want whole seconds (60, 90s, 30m), not %s", d)
	}
	*f.d = d
	return nil
}
