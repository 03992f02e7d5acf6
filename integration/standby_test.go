package integration

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/kv"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/topics"
)

// A partition with a standby: the standby serves SESSION reads of a write
// made through the owner and EVENTUAL reads; when the partition moves to the
// standby's node, the handover replays only the tail (a handful of records),
// where a move to a node without one replays the whole changelog.
func TestStandbyServesReadsAndHandsOverFast(t *testing.T) {
	c := startCluster(t, "--lease", "200ms")
	ctx := context.Background()
	ctl := c.control("n1")
	if _, err := ctl.RemovePartition(ctx, &sluicev1.RemovePartitionRequest{Range: &sluicev1.SlotRange{From: 12, To: 16}}); err != nil {
		t.Fatal(err)
	}
	added, err := ctl.AddPartition(ctx, &sluicev1.AddPartitionRequest{Range: &sluicev1.SlotRange{From: 12, To: 16}, Node: "n1", Standbys: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(added.Standbys) != 1 || added.Standbys[0] == "n1" {
		t.Fatalf("standbys %v", added.Standbys)
	}
	sbNode, other := added.Standbys[0], map[string]string{"n2": "n3", "n3": "n2"}[added.Standbys[0]]
	c.waitServing("n1")

	w, err := client.New(c.nodes["n1"].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const keys = 60_000
	var batch []client.Entry
	for i := 0; len(batch) < keys; i++ {
		k := fmt.Append(nil, "sb", i)
		if s := keyspace.Slot(k, 16); s >= 12 {
			batch = append(batch, client.Entry{Key: k, Value: fmt.Append(nil, i)})
		}
	}
	for i := 0; i < len(batch); i += 2000 {
		if _, err := w.Upsert(ctx, batch[i:i+2000]...); err != nil {
			t.Fatal(err)
		}
	}
	last := batch[len(batch)-1]

	// SESSION at the standby: sees the write made through the owner.
	sb := dataClient(t, c.nodes[sbNode].addr)
	tok := w.Session()
	resp, err := sb.Get(ctx, &sluicev1.GetRequest{Key: last.Key, Consistency: sluicev1.Consistency_SESSION, Session: &sluicev1.Session{Offsets: tok.Offsets, Cluster: tok.Cluster}})
	if err != nil || !resp.Found || string(resp.Value) != string(last.Value) {
		t.Fatalf("session read at the standby: %v %v", resp, err)
	}
	// EVENTUAL at the standby: committed state, here in full.
	eventually(t, 10*time.Second, func() error {
		resp, err := sb.Get(ctx, &sluicev1.GetRequest{Key: batch[0].Key, Consistency: sluicev1.Consistency_EVENTUAL})
		if err != nil || !resp.Found {
			return fmt.Errorf("eventual read at the standby: %v %v", resp, err)
		}
		return nil
	})
	// A transaction that never commits is never visible at the standby.
	rogue, err := kgo.NewClient(kgo.SeedBrokers(kafkatest.Brokers(t)...), kgo.TransactionalID(t.Name()+"-rogue"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	if err := rogue.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	topic := topics.Names{Cluster: c.name}.Changelog()
	pending := kv.Record{Kind: kv.KindChange, Slot: keyspace.Slot(batch[1].Key, 16), Epoch: added.Epoch, Change: kv.Change{Key: batch[1].Key, Value: []byte("uncommitted"), Version: 99}}
	if err := rogue.ProduceSync(ctx, changelog.Encode(topic, pending)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // time for the standby to fetch whatever it could see
	if resp, err := sb.Get(ctx, &sluicev1.GetRequest{Key: batch[1].Key, Consistency: sluicev1.Consistency_EVENTUAL}); err != nil || string(resp.Value) == "uncommitted" {
		t.Fatalf("an eventual read at the standby saw an uncommitted value: %v %v", resp, err)
	}
	if err := rogue.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	// A LINEARIZABLE read at the standby is not served there.
	if _, err := sb.Get(ctx, &sluicev1.GetRequest{Key: last.Key}); err == nil {
		t.Fatal("a standby answered a linearizable read")
	}

	moveAndCount := func(to string) (int, time.Duration) {
		start := time.Now()
		c.move(added.Id, to)
		took := time.Since(start)
		return restoredRecords(t, c.nodes[to].logPath, added.Id), took
	}
	hot, hotTook := moveAndCount(sbNode)
	cold, coldTook := moveAndCount(other)
	t.Logf("handover to the standby replayed %d records in %v; a move to a node without one replayed %d in %v", hot, hotTook, cold, coldTook)
	if cold < keys || hot > cold/100 {
		t.Fatalf("the standby's handover replayed %d records, the cold restore %d: want under 1%%", hot, cold)
	}
	for _, e := range []client.Entry{batch[0], last} {
		if v, found, err := w.Get(ctx, e.Key); err != nil || !found || string(v.Data) != string(e.Value) {
			t.Fatalf("after the moves %s = %q %v %v", e.Key, v.Data, found, err)
		}
	}
}

// restoredRecords reads from a node's log how many records partition id's
// last restore replayed.
func restoredRecords(t *testing.T, logPath string, id uint32) int {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(fmt.Sprintf(`"partition":%d,[^\n]*"records":(\d+),[^\n]*"message":"restored"`, id))
	m := re.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		t.Fatalf("no restore of partition %d in %s", id, logPath)
	}
	n, _ := strconv.Atoi(string(m[len(m)-1][1]))
	return n
}
