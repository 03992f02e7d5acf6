package main

import (
	"fmt"
	"strconv"
	"strings"

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
