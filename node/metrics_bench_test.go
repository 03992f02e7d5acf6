package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// BenchmarkMetricsScrape: the cost of one scrape of /metrics of a node with
// 16 partitions whose histograms all have series (after writes and reads).
// "http" is what Prometheus does (GET over loopback, gzip), counting this
// client's share too; "handler-*" is the node's share alone: the handler
// called in-process, with and without gzip. cpu-ns/op is the process's CPU time
// (user+system) per scrape, which a loaded machine does not inflate as it
// does the wall time; it includes the idle node's own background work.
func BenchmarkMetricsScrape(b *testing.B) {
	n := startNode(b, Config{Partitions: 16, HTTPAddr: "127.0.0.1:0"})
	ctx := context.Background()
	for i := range 2000 {
		key := fmt.Sprint("key-", i)
		if _, err := n.data.Upsert(ctx, upsert(key, "v")); err != nil {
			b.Fatal(err)
		}
		if _, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: []byte(key)}); err != nil {
			b.Fatal(err)
		}
	}
	series := 0
	for _, f := range scrape(b, n.HTTPAddr()) {
		series += len(f.GetMetric())
	}
	b.Logf("one scrape: %d series (a histogram counts once)", series)
	b.Run("http", func(b *testing.B) {
		url := "http://" + n.HTTPAddr() + "/metrics"
		var size int64
		cpu := cpuTime()
		for b.Loop() {
			resp, err := http.Get(url) // asks for gzip, as Prometheus does
			if err != nil {
				b.Fatal(err)
			}
			size, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatal(resp.Status, err)
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(size), "bytes/scrape")
	})
	for _, enc := range []string{"gzip", "identity"} {
		b.Run("handler-"+enc, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", enc)
			cpu := cpuTime()
			for b.Loop() {
				w := httptest.NewRecorder()
				n.httpSrv.Handler.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
