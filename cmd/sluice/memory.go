package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
)

// memoryFlags are the Go runtime's memory settings of `sluice serve`: they
// are the process's, not a node's (tests run many nodes in one process), so
// they live here and not in node.Config.
type memoryFlags struct {
	limit     int64         // --memory-limit: the runtime's soft limit, bytes; 0 derives it
	gcPercent int           // --gc-percent: GOGC, unless $GOGC is set and the flag is not
	idle      time.Duration // --idle-memory-release: the idle release's period; 0 turns it off
}

func (m *memoryFlags) register(f *pflag.FlagSet) {
	bytesVar(f, &m.limit, "memory-limit", 0, "soft limit of the Go runtime's memory (GOMEMLIMIT), which it collects harder to stay under; "+
		"default: $GOMEMLIMIT, else 90% of the container's (cgroup's) memory limit, else none. Not a cap: past it the collector takes up to half the CPU")
	f.IntVar(&m.gcPercent, "gc-percent", 100, "the Go collector's GOGC: the heap grows by this percent of what was live before it collects; $GOGC counts when this flag is not given. "+
		"50 keeps the heap lower under churn (a node that read 1 M keys: 172 MiB anonymous against 222 at 100, with a 64 MiB read cache) and costs 10–30 % more CPU a written key (BENCHMARKS.md)")
	f.DurationVar(&m.idle, "idle-memory-release", 10*time.Second, "when no collection ran for this long (an idle node), collect and give the free memory back to the OS "+
		"(the runtime would keep it until the heap next grew by --gc-percent, minutes at low load); 0: never")
}

// apply sets the runtime's memory settings and starts the idle release
// until ctx ends. gcSet says --gc-percent was given (else $GOGC, if set,
// stays the runtime's).
func (m memoryFlags) apply(ctx context.Context, gcSet bool, log zerolog.Logger) error {
	if m.gcPercent <= 0 {
		return fmt.Errorf("--gc-percent %d: must be positive", m.gcPercent)
	}
	if m.limit < 0 || m.idle < 0 {
		return fmt.Errorf("--memory-limit and --idle-memory-release must not be negative")
	}
	if gcSet || os.Getenv("GOGC") == "" {
		debug.SetGCPercent(m.gcPercent)
	}
	limit, from := m.limit, "--memory-limit"
	if limit == 0 && os.Getenv("GOMEMLIMIT") == "" {
		if c, ok := cgroupMemoryLimit(); ok {
			limit, from = c/10*9, "90% of the cgroup's memory limit"
		}
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
		log.Info().Int64("bytes", limit).Str("from", from).Msg("Go runtime memory limit")
	}
	if m.idle > 0 {
		go releaseIdleMemory(ctx, m.idle)
	}
	return nil
}

// releaseIdleMemory collects and returns the heap's free memory to the OS
// when a whole period went by without a collection (the node is idle, or
// nearly) and either a collection of the runtime's ran since this one last
// did, or the heap grew by an eighth since. Under load the collector runs
// every few seconds and this never fires. After a burst of writes (table
// builders, memtables, requests) the garbage and the freed pages would
// otherwise stay resident until the heap grew by another GOGC% or the
// runtime's two-minute forced collection, and its scavenger returns freed
// pages only down to the heap goal. What the last collection found live
// cannot tell garbage from live data: badger's pools of table builders let
// their buffers go after it, while the node is idle. So an idle node is
// collected once, and again only when something changed.
func releaseIdleMemory(ctx context.Context, every time.Duration) {
	s := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	read := func() (cycles, held uint64) {
		metrics.Read(s)
		return s[0].Value.Uint64(), s[1].Value.Uint64() + s[2].Value.Uint64()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last, ours, floor uint64 // cycles at the last tick, and after this function's last release; what the heap held then
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cycles, held := read()
		if cycles == last && (cycles != ours || held > floor+floor/8+4<<20) {
			debug.FreeOSMemory()
			cycles, floor = read()
			ours = cycles
		}
		last = cycles
	}
}

// cgroupMemoryLimit is the memory limit of the cgroup the process runs in
// (v2 memory.max, v1 memory.limit_in_bytes), if it has one.
func cgroupMemoryLimit() (int64, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	var paths []string
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-ID:controllers:path; v2's controllers are empty.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] == "":
			paths = append(paths, filepath.Join("/sys/fs/cgroup", parts[2], "memory.max"),
				filepath.Join("/sys/fs/cgroup/unified", parts[2], "memory.max"))
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			paths = append(paths, filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
		}
	}
	for _, p := range paths {
		if n, ok := readCgroupLimit(p); ok {
			return n, true
		}
	}
	return 0, false
}

// readCgroupLimit reads one cgroup limit file: "max" (v2), or a page-rounded
// MaxInt64 (v1), is no limit.
func readCgroupLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= math.MaxInt64/2 {
		return 0, false
	}
	return n, true
}
