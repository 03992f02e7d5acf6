package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicedb/sluice/keyspace"
)

// The rules of where a partition's data can go read the modes the owner
// and the node named announced (the tester's D3: they read the mode of the
// node answering the call).
func TestModesDecideWhereDataCanGo(t *testing.T) {
	view := func() *View {
		return &View{
			Nodes: map[string]Node{
				"bare":   {ID: "bare", WAL: WALDisk},                  // disk, no bucket
				"disk1":  {ID: "disk1", WAL: WALDisk, Bucket: true},   // disk with a bucket
				"disk2":  {ID: "disk2", WAL: WALDisk, Bucket: true},   //
				"kafka1": {ID: "kafka1", WAL: WALKafka},               //
				"old":    {ID: "old"},                                 // from before modes were announced: kafka
				"none1":  {ID: "none1", WAL: WALNone, Bucket: true},   //
				"bare2":  {ID: "bare2", WAL: WALDisk, Bucket: false},  //
				"kafka2": {ID: "kafka2", WAL: WALKafka, Bucket: true}, //
			},
			Partitions: map[uint32]Partition{
				1: {ID: 1, Range: keyspace.Range{From: 0, To: 4}, Owner: "bare", Epoch: 1},
				2: {ID: 2, Range: keyspace.Range{From: 4, To: 8}, Owner: "disk1", Epoch: 1},
				3: {ID: 3, Range: keyspace.Range{From: 8, To: 12}, Owner: "kafka1", Epoch: 1},
			},
			MaxEpoch: 1, MaxID: 3,
		}
	}
	moves := []struct {
		id   uint32
		to   string
		want string // "" for allowed, else a substring of the refusal
	}{
		{1, "disk1", "node bare runs --wal disk without --snapshot-url"},
		{2, "bare2", "node bare2 runs --wal disk without --snapshot-url"},
		{2, "kafka1", "owner disk1 runs --wal disk and node kafka1 runs --wal kafka"},
		{2, "none1", "owner disk1 runs --wal disk and node none1 runs --wal none"},
		{3, "disk1", "owner kafka1 runs --wal kafka and node disk1 runs --wal disk"},
		{2, "disk2", ""},
		{3, "kafka2", ""},
		{3, "old", ""},
	}
	for _, m := range moves {
		muts, p, err := view().Move(m.id, m.to)
		if m.want == "" {
			if err != nil || p.Owner != m.to || len(muts) == 0 {
				t.Errorf("move %d to %s: %v %+v %v, want it moved", m.id, m.to, muts, p, err)
			}
			continue
		}
		if !errors.Is(err, ErrCannotCarry) || !strings.Contains(err.Error(), m.want) {
			t.Errorf("move %d to %s: %v, want ErrCannotCarry saying %q", m.id, m.to, err, m.want)
		}
	}
	v := view()
	if _, err := v.Remove(v.Partitions[1]); !errors.Is(err, ErrCannotCarry) || !strings.Contains(err.Error(), "node bare runs --wal disk without --snapshot-url") {
		t.Errorf("remove partition 1 of a disk node without a bucket: %v, want ErrCannotCarry naming the owner", err)
	}
	for _, id := range []uint32{2, 3} {
		if muts, err := v.Remove(v.Partitions[id]); err != nil || len(muts) != 1 {
			t.Errorf("remove partition %d: %v %v", id, muts, err)
		}
	}
	// Standbys: only an owner of --wal kafka has them, only on nodes of --wal kafka.
	if _, _, err := v.Add(AddRequest{Range: keyspace.Range{From: 12, To: 16}, Owner: "disk1", Standbys: 1}, txnID); !errors.Is(err, ErrCannotCarry) || !strings.Contains(err.Error(), "node disk1 runs --wal disk") {
		t.Errorf("a standby of a partition of disk1: %v, want ErrCannotCarry naming disk1", err)
	}
	if _, p, err := v.Add(AddRequest{Range: keyspace.Range{From: 12, To: 16}, Owner: "kafka1", Standbys: 2}, txnID); err != nil || len(p.Standbys) != 2 || p.Standbys[0] != "kafka2" || p.Standbys[1] != "old" {
		t.Errorf("two standbys of a partition of kafka1: %+v %v, want them on kafka2 and old (the other nodes of --wal kafka)", p, err)
	}
	if _, _, err := v.Add(AddRequest{Range: keyspace.Range{From: 12, To: 16}, Owner: "kafka1", Standbys: 3}, txnID); !errors.Is(err, ErrInvalid) {
		t.Errorf("three standbys with two other nodes of --wal kafka: %v, want ErrInvalid", err)
	}
	if id, wal := v.MixedModes("disk1", WALDisk); id != "kafka1" || wal != WALKafka {
		t.Errorf("mixed modes for a disk node: %q %q, want kafka1 (old says nothing and is left out)", id, wal)
	}
	if id, _ := (&View{Nodes: map[string]Node{"a": {ID: "a", WAL: WALNone}, "b": {ID: "b"}}}).MixedModes("c", WALNone); id != "" {
		t.Errorf("mixed modes among none and unannounced nodes: %q, want none", id)
	}
}
