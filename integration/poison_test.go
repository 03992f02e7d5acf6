package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/topics"
)

// Poison pills: ingest records just over each limit, produced by kcat
// compressed and not, go to the DLQ as bounded stubs, once each; the
// partition never re-syncs over them and keeps serving the records around
// them. The limits: sluice's 1 MiB for key, value and headers; the producer's
// 4 MiB batch (a copy of a larger record could never be appended); and, with
// compression, records larger than the topic's own limit, which applies to
// the compressed batch.
func TestPoisonPillsGoToTheDLQOnce(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	httpAddr := freeAddr(t)
	p := newProc(t, cluster, t.TempDir(), "--partitions", "1", "--http-addr", httpAddr)
	p.start()
	tp := topics.Names{Cluster: cluster}
	dir := t.TempDir()
	pills := []struct {
		name  string
		size  int
		codec string
	}{
		{"over-1MiB", 1<<20 + 1, "none"},
		{"over-1MiB-gzip", 1<<20 + 1, "gzip"},
		{"over-4MiB", 4<<20 + 1, "none"},
		{"over-4MiB-lz4", 4<<20 + 1, "lz4"},
		{"16MiB-gzip", 16 << 20, "gzip"},
	}
	for i, pill := range pills {
		// With a delimiter the file does not hold, the file is one record,
		// "key<TAB>value".
		file := filepath.Join(dir, pill.name)
		value := strings.Repeat("x", pill.size)
		if err := os.WriteFile(file, []byte(pill.name+"\t"+value), 0o600); err != nil {
			t.Fatal(err)
		}
		kcat(t, tp.Ingest(), "", "-z", pill.codec, "-D", `\x01`, "-X", "message.max.bytes=20000000", "-l", file)
		kcat(t, tp.Ingest(), fmt.Sprintf("after-%d\tok\n", i))
	}
	c, err := client.New(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	eventually(t, 60*time.Second, func() error {
		for i := range pills {
			if v, found, err := c.Get(ctx, []byte(fmt.Sprint("after-", i))); err != nil || !found || string(v.Data) != "ok" {
				return fmt.Errorf("after-%d: %q %v %v", i, v.Data, found, err)
			}
		}
		return nil
	})
	dlq, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...), kgo.ConsumeTopics(tp.DLQ()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	seen := map[string]int{}
	pollCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for pollCtx.Err() == nil {
		for _, r := range dlq.PollFetches(pollCtx).Records() {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			if h[changelog.HeaderTruncated] == "" || r.Value != nil || len(r.Key)+len(r.Value) > changelog.StubKeyBytes || !strings.Contains(h[changelog.HeaderError], "over the limit") {
				t.Errorf("DLQ record %q is not a bounded stub: %d value bytes, headers %v", r.Key, len(r.Value), h)
			}
			seen[string(r.Key)]++
		}
	}
	for _, pill := range pills {
		if seen[pill.name] != 1 {
			t.Errorf("%s is in the DLQ %d times, want once", pill.name, seen[pill.name])
		}
	}
	// Never re-synced: the log says nothing of a failed append, and the
	// DLQ counter counts each pill once.
	if b, _ := os.ReadFile(p.logPath); strings.Contains(string(b), "re-sync") {
		t.Errorf("the partition re-synced:\n%s", b)
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, m := range fams["sluice_ingest_dlq_total"].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	if int(total) != len(pills) {
		t.Errorf("sluice_ingest_dlq_total = %v, want %d", total, len(pills))
	}
}
