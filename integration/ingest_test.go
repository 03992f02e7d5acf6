package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kv"
	"github.com/sluicedb/sluice/topics"
)

// kcat produces lines "key<TAB>value" to topic with Debian's kcat, a client
// sluice did not write, with its own default partitioner (librdkafka's
// consistent_random: CRC32, not Kafka's murmur2). extra are kcat flags.
func kcat(t *testing.T, topic string, lines string, extra ...string) {
	t.Helper()
	args := append([]string{"-b", strings.Join(kafkatest.Brokers(t), ","), "-t", topic, "-P", "-K", "\t", "-X", "enable.idempotence=true"}, extra...)
	cmd := exec.Command("kcat", args...)
	cmd.Stdin = strings.NewReader(lines)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
}

// eventually retries check until it passes or time runs out.
func eventually(t *testing.T, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// End to end with a producer sluice did not write: kcat writes, `sluice get`
// reads back; a null value (kcat -Z with an empty value) removes.
func TestIngestFromKcatReadWithSluiceGet(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	p := newProc(t, cluster, t.TempDir())
	p.start()
	topic := topics.Names{Cluster: cluster}.Ingest()
	var lines strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&lines, "user:%d\tprofile-%d\n", i, i)
	}
	kcat(t, topic, lines.String())
	kcat(t, topic, "user:7\t\n", "-Z") // -Z: empty value is a null value, a tombstone
	eventually(t, 30*time.Second, func() error {
		for i := 0; i < 10; i++ {
			out, errs, code := sluice(t, p.addr, "get", fmt.Sprint("user:", i))
			if i == 7 {
				if code != 3 { // exit 3: not found
					return fmt.Errorf("user:7 was removed but get says %q %q", out, errs)
				}
				continue
			}
			if code != 0 || out != fmt.Sprintf("profile-%d\n", i) {
				return fmt.Errorf("get user:%d = %q %q (exit %d)", i, out, errs, code)
			}
		}
		return nil
	})
}

// Each kind of bad record lands in the DLQ with its reason and source offset;
// the good records around it are applied.
func TestIngestBadRecordsGoToDLQ(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	p := newProc(t, cluster, t.TempDir())
	p.start()
	tp := topics.Names{Cluster: cluster}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...), kgo.DefaultProduceTopic(tp.Ingest()), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	hdr := func(k, v string) []kgo.RecordHeader { return []kgo.RecordHeader{{Key: k, Value: []byte(v)}} }
	bad := []struct {
		rec    *kgo.Record
		reason string
	}{
		{&kgo.Record{Key: nil, Value: []byte("v")}, "empty key"},
		{&kgo.Record{Key: bytes.Repeat([]byte("k"), 4097), Value: []byte("v")}, "limit of 4096 bytes"},
		{&kgo.Record{Key: []byte("big"), Value: bytes.Repeat([]byte("v"), 1<<20)}, "limit of 1048576 bytes"},
		{&kgo.Record{Key: []byte("\x00reserved"), Value: []byte("v")}, "reserved"},
		{&kgo.Record{Key: []byte("ttl"), Value: []byte("v"), Headers: hdr("ttl", "soon")}, `ttl="soon"`},
		{&kgo.Record{Key: []byte("op"), Value: []byte("v"), Headers: hdr("op", "merge")}, `op="merge"`},
		{&kgo.Record{Key: []byte("op2"), Value: nil, Headers: hdr("op", "upsert")}, "null value"},
	}
	ctx := context.Background()
	for i, b := range bad {
		good := &kgo.Record{Key: []byte(fmt.Sprint("good-", i)), Value: []byte("ok")}
		if err := cl.ProduceSync(ctx, good, b.rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The DLQ holds each bad record, with its reason.
	dlq, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...), kgo.ConsumeTopics(tp.DLQ()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	var got []*kgo.Record
	pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(got) < len(bad) && pollCtx.Err() == nil {
		got = append(got, dlq.PollFetches(pollCtx).Records()...)
	}
	if len(got) != len(bad) {
		t.Fatalf("%d records in the DLQ, want %d", len(got), len(bad))
	}
	for _, b := range bad {
		found := false
		for _, r := range got {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			// A record too large to copy whole leaves a stub: its key, its sizes.
			_, stub := h[changelog.HeaderTruncated]
			if bytes.Equal(r.Key, b.rec.Key) && (bytes.Equal(r.Value, b.rec.Value) || stub && r.Value == nil) &&
				strings.Contains(h[changelog.HeaderError], b.reason) && h[changelog.HeaderSourceOffset] != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("no DLQ record for key %.20q with reason %q", b.rec.Key, b.reason)
		}
	}
	c, err := client.New(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, 10*time.Second, func() error {
		for i := range bad {
			if v, found, err := c.Get(ctx, []byte(fmt.Sprint("good-", i))); err != nil || !found || string(v.Data) != "ok" {
				return fmt.Errorf("good-%d: %q %v %v", i, v.Data, found, err)
			}
		}
		return nil
	})
	for _, key := range []string{"big", "ttl", "op"} {
		if _, found, _ := c.Get(ctx, []byte(key)); found {
			t.Errorf("bad record %q was applied", key)
		}
	}
}

// Kill -9 the node at random points while a producer writes 100,000 records
// with counters in their values; after restart the state matches a model built
// from the topic, each key's version counts its records exactly (applied once,
// never twice), and the changelog holds no ingest offset applied twice.
// Interleaved gRPC writes after the load keep their place: the state ends
// with them.
func TestIngestExactlyOnceAcrossKill9(t *testing.T) {
	cluster := kafkatest.ClusterName(t)
	tp := topics.Names{Cluster: cluster}
	p := newProc(t, cluster, t.TempDir())
	p.start()

	const records, keys = 100_000, 2000
	var lines strings.Builder
	counts := make(map[string]int)
	for i := 0; i < records; i++ {
		k := fmt.Sprint("k", i%keys)
		counts[k]++
		fmt.Fprintf(&lines, "%s\t%d\n", k, counts[k])
	}
	produced := make(chan error, 1)
	go func() {
		cmd := exec.Command("kcat", "-b", strings.Join(kafkatest.Brokers(t), ","), "-t", tp.Ingest(), "-P", "-K", "\t", "-X", "enable.idempotence=true")
		cmd.Stdin = strings.NewReader(lines.String())
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("kcat: %v: %s", err, out)
		}
		produced <- err
	}()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	for i := 0; i < 3; i++ {
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		p.kill()
		p.start()
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	c, err := client.New(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	eventually(t, 120*time.Second, func() error {
		for k, n := range counts {
			v, found, err := c.Get(ctx, []byte(k))
			if err != nil || !found || string(v.Data) != strconv.Itoa(n) {
				return fmt.Errorf("%s = %q (found %v, %v), the model says %d", k, v.Data, found, err, n)
			}
			if v.Version != uint64(n) {
				t.Fatalf("%s has version %d after %d records: a record was applied %s", k, v.Version, n, map[bool]string{true: "twice", false: "never"}[v.Version > uint64(n)])
			}
		}
		return nil
	})
	// gRPC writes after the ingest records win, across one more kill -9.
	for i := 0; i < 50; i++ {
		if _, err := c.Upsert(ctx, client.Entry{Key: []byte(fmt.Sprint("k", i)), Value: []byte("grpc")}); err != nil {
			t.Fatal(err)
		}
	}
	p.kill()
	p.start()
	for i := 0; i < 50; i++ {
		if v, _, err := c.Get(ctx, []byte(fmt.Sprint("k", i))); err != nil || string(v.Data) != "grpc" {
			t.Fatalf("k%d = %q %v after restart: an ingest record was replayed over a later gRPC write", i, v.Data, err)
		}
	}
	// No ingest offset was applied twice in the changelog.
	seen := make(map[[2]int64]bool)
	from := map[int32]int64{}
	for s := int32(0); s < 16; s++ {
		from[s] = 0
	}
	_, err = kafkaread.Replay(ctx, []kgo.Opt{kgo.SeedBrokers(kafkatest.Brokers(t)...)}, tp.Changelog(), from, func(b kafkaread.Step) error {
		for _, r := range b.Records {
			ch, err := changelog.Decode(r)
			if err != nil {
				return err
			}
			if ch.Kind != kv.KindChange || ch.Ingest == nil {
				continue
			}
			id := [2]int64{int64(ch.Ingest.Slot), ch.Ingest.Offset}
			if seen[id] {
				return fmt.Errorf("ingest slot %d offset %d applied twice", id[0], id[1])
			}
			seen[id] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != records {
		t.Fatalf("the changelog holds %d ingest applications, want %d", len(seen), records)
	}
}
