// Command fsync measures this machine's fsync ceiling: how many 4 KiB
// appends a second a file takes when each is synced before the next (what a
// write-ahead log that syncs every group pays), with one writer or several
// on their own files (a node's partitions). BENCHMARKS.md sets the --wal disk
// figures beside it.
//
//	go run ./bench/fsync -dir /var/lib/sluice -writers 1,4 -d 5s
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	dir := flag.String("dir", ".", "directory on the disk to measure (files are removed after)")
	writers := flag.String("writers", "1,4", "comma-separated writer counts, each on its own file")
	size := flag.Int("size", 4096, "bytes per write")
	d := flag.Duration("d", 5*time.Second, "duration of each measurement")
	flag.Parse()
	for _, s := range strings.Split(*writers, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "fsync: bad writer count %q\n", s)
			os.Exit(2)
		}
		if err := run(*dir, n, *size, *d); err != nil {
			fmt.Fprintln(os.Stderr, "fsync:", err)
			os.Exit(1)
		}
	}
}

// run has n writers append size bytes and fsync, back to back, for d.
func run(dir string, n, size int, d time.Duration) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		lat   []time.Duration
		first error
	)
	deadline := time.Now().Add(d)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := filepath.Join(dir, fmt.Sprintf(".fsync-bench-%d-%d", os.Getpid(), w))
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
				return
			}
			defer os.Remove(path)
			defer f.Close()
			buf := make([]byte, size)
			var mine []time.Duration
			for time.Now().Before(deadline) {
				start := time.Now()
				_, err := f.Write(buf)
				if err == nil {
					err = f.Sync()
				}
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*p))] }
	fmt.Printf("writers %d: %d fsyncs of %d B in %v = %.0f fsyncs/s (%.0f per writer); latency p50 %.2f ms, p99 %.2f ms\n",
		n, len(lat), size, d, float64(len(lat))/d.Seconds(), float64(len(lat))/d.Seconds()/float64(n),
		float64(pct(0.5).Microseconds())/1000, float64(pct(0.99).Microseconds())/1000)
	return nil
}
