package registry

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A registry record is folded by every node: whatever its bytes, apply must
// not panic, and an accepted partition record keeps the view consistent.
func FuzzApply(f *testing.F) {
	f.Add("partition/1", []byte(`{"id":1,"range":{"from":0,"to":4},"owner":"n1","epoch":1}`), false)
	f.Add("node/n1", []byte(`{"id":"n1","data_addr":"a:1","control_addr":"a:2"}`), false)
	f.Add("partition/2", []byte(nil), true)
	f.Add("max-epoch", []byte("7"), false)
	f.Fuzz(func(t *testing.T, key string, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		}
		v := &View{Partitions: map[uint32]Partition{}, Nodes: map[string]Node{}}
		if err := apply(v, &kgo.Record{Key: []byte(key), Value: value}); err != nil {
			return
		}
		for id, p := range v.Partitions {
			if p.ID != id {
				t.Fatalf("partition %d filed under %d", p.ID, id)
			}
			if p.Epoch > v.MaxEpoch {
				t.Fatalf("epoch %d above the max %d", p.Epoch, v.MaxEpoch)
			}
		}
		for id, n := range v.Nodes {
			if n.ID != id {
				t.Fatalf("node %q filed under %q", n.ID, id)
			}
		}
	})
}
