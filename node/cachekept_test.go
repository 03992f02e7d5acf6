package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/topics"
)

// logBuffer is a log a test reads back while the node writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Issue 23.10: a clean shutdown keeps the write-through cache of every
// partition of a node that consumed ingest, also when the start before had
// dropped it (a crash: no cache marked clean). The check that failed was the
// ingest offsets': a dropped cache started empty and got the ingest offsets
// of only the slots ingest reached since.
func TestCachedStoreIsKeptAfterACleanShutdownWithIngest(t *testing.T) {
	cluster, dir, cacheDir := kafkatest.ClusterName(t), t.TempDir(), t.TempDir()
	cfg := func(log *logBuffer) Config {
		return Config{Cluster: cluster, DataDir: dir, Store: StoreCached, CacheDir: cacheDir, Partitions: 4,
			Log: zerolog.New(log).Level(zerolog.InfoLevel)}
	}
	first := &logBuffer{}
	n := startNode(t, cfg(first))
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := topics.Names{Cluster: cluster}.Ingest()
	var recs []*kgo.Record
	for i := range 200 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "in-%d", i), Value: []byte("v")})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.data.Upsert(ctx, upsert("direct", "d")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < 200; {
		r, err := n.data.Get(ctx, &sluicev1.GetRequest{Key: fmt.Appendf(nil, "in-%d", i)})
		if err == nil && r.Found {
			i++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest record %d not applied in 60 s (%v)", i, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.conn.Close()
	n.Close()
	// A crash: no partition's cache is marked clean; the next start drops them.
	marks, _ := filepath.Glob(filepath.Join(cacheDir, "partitions", "*", "clean"))
	if len(marks) == 0 {
		t.Fatal("no cache was marked clean at the shutdown")
	}
	for _, m := range marks {
		os.Remove(m)
	}
	n = startNode(t, cfg(&logBuffer{}))
	n.conn.Close()
	n.Close()

	second := &logBuffer{}
	startNode(t, cfg(second))
	opened := 0
	for _, line := range strings.Split(second.String(), "\n") {
		if strings.Contains(line, "write-through cache dropped") {
			t.Errorf("after a clean shutdown: %s", line)
		}
		if !strings.Contains(line, "write-through cache open") {
			continue
		}
		opened++
		if !strings.Contains(line, `"kept":true`) {
			t.Errorf("after a clean shutdown: %s", line)
		}
	}
	if opened == 0 {
		t.Fatal("no cache opened")
	}
}
