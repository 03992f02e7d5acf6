package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/topics"
)

// A restore whose replay cannot move says which slot it waits for, where it
// is and where it must get to, in /healthz and in ListPartitions' state; once
// the slot can be read again the partition serves.
func TestStalledRestoreNamesItsSlot(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir, cluster := t.TempDir(), "stall"
	cfg := Config{DataDir: dir, Cluster: cluster, Brokers: c.ListenAddrs(), Partitions: 1}
	n := startNode(t, cfg)
	if _, err := n.data.Upsert(context.Background(), upsert("k", "v")); err != nil {
		t.Fatal(err)
	}
	n.Close()

	// A fresh disk replays from 0; fetches of the key's slot fail.
	slot := keyspace.Slot([]byte("k"), keyspace.DefaultSlots)
	var failing atomic.Bool
	failing.Store(true)
	topic := topics.Names{Cluster: cluster}.Changelog()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	md, err := kadm.NewClient(cl).Metadata(context.Background(), topic)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	id := md.Topics[topic].ID
	c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		f := req.(*kmsg.FetchRequest)
		if !failing.Load() || len(f.Topics) != 1 || (f.Topics[0].Topic != topic && f.Topics[0].TopicID != id) || f.Topics[0].Partitions[0].Partition != slot {
			return nil, nil, false
		}
		resp := f.ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = f.Topics[0].Topic, f.Topics[0].TopicID
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.ErrorCode = slot, kerr.KafkaStorageError.Code
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	cfg.DataDir, cfg.HTTPAddr = t.TempDir(), "127.0.0.1:0"
	m, err := Start(context.Background(), withTestDefaults(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := fmt.Sprintf("waiting for slot %d at 0/", slot)
	deadline := time.Now().Add(60 * time.Second)
	for {
		body := healthz(t, m)
		state := "not open yet"
		if ps := m.LocalStatus(); len(ps) > 0 {
			state = ps[0].State
		}
		if strings.Contains(body, want) && strings.Contains(state, want) && strings.Contains(state, "KAFKA_STORAGE_ERROR") {
			t.Logf("/healthz: %s; ListPartitions: %s", body, state)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s /healthz says %q and the state is %q; want both to name slot %d", body, state, slot)
		}
		time.Sleep(100 * time.Millisecond)
	}
	failing.Store(false)
	for !m.Ready() {
		if time.Now().After(deadline.Add(60 * time.Second)) {
			t.Fatalf("not serving once the slot can be read: %s", healthz(t, m))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body := healthz(t, m); body != "ok\n" {
		t.Fatalf("/healthz of a serving node: %q", body)
	}
}

func withTestDefaults(t *testing.T, cfg Config) Config {
	cfg.DataAddr, cfg.ControlAddr, cfg.ControlToken = "127.0.0.1:0", "127.0.0.1:0", "test-token"
	return cfg
}

func healthz(t *testing.T, n *Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestAPartitionsStateSaysClosingAndStopped(t *testing.T) {
	for _, c := range []struct {
		st   partition.State
		want string
	}{
		{partition.State{Phase: partition.RestoreReplay, Percent: 40, Waiting: "slot 3"}, "restoring 40% (slot 3)"},
		{partition.State{Phase: partition.RestoreFence}, "restoring 0%"},
		{partition.State{Phase: partition.Serving, Percent: 100}, "serving"},
		{partition.State{Phase: partition.Closing, Percent: 100}, "closing"},
		{partition.State{Phase: partition.Stopped, Percent: 100}, "stopped"},
		{partition.State{Phase: partition.Stopped, Err: fmt.Errorf("p1: %w", partition.ErrDeposed)}, "deposed"},
	} {
		if got := describe(c.st); got != c.want {
			t.Errorf("%v says %q, want %q", c.st.Phase, got, c.want)
		}
	}
}
