package registry

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/keyspace"
)

// A registry record is folded by every node: whatever its bytes, apply must
// not panic, an accepted partition record keeps the view consistent, and no
// record makes the view forget a range a writer was given (a new owner
// would then leave that writer unfenced).
func FuzzApply(f *testing.F) {
	f.Add("partition/1", []byte(`{"id":1,"range":{"from":0,"to":4},"owner":"n1","epoch":1}`), false)
	f.Add("node/n1", []byte(`{"id":"n1","data_addr":"a:1","control_addr":"a:2"}`), false)
	f.Add("partition/2", []byte(nil), true)
	f.Add("max-epoch", []byte("7"), false)
	f.Add("max-id", []byte("1"), false)
	f.Add("max-id", []byte("4294967296"), false)
	f.Add("writer/c.p1", []byte(`{"id":"c.p1","ranges":[{"range":{"from":0,"to":2},"epoch":3}]}`), false)
	f.Add("writer/c.p1", []byte(`{"id":"c.p1","ranges":[]}`), false)
	f.Add("writer/c.p1", []byte(nil), true)
	f.Add("writer/c.p9", []byte(`{"id":"c.p9","ranges":[{"range":{"from":4,"to":2},"epoch":1}]}`), false)
	f.Add("incarnation/n1", []byte(`{"node":"n1","n":4,"data_addr":"a:1","control_addr":"a:2","dir":"b/1/2"}`), false)
	f.Add("incarnation/n1", []byte(`{"node":"n1","n":2}`), false)
	f.Add("incarnation/n1", []byte(nil), true)
	f.Fuzz(func(t *testing.T, key string, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		}
		before := []WriterRange{{Range: keyspace.Range{From: 0, To: 4}, Epoch: 2}}
		v := &View{Partitions: map[uint32]Partition{}, Nodes: map[string]Node{}, MaxEpoch: 2, MaxID: 3,
			Writers:      map[string]Writer{"c.p1": {ID: "c.p1", Ranges: before}},
			Incarnations: map[string]Incarnation{"n1": {Node: "n1", N: 3}}}
		err := apply(v, &kgo.Record{Key: []byte(key), Value: value})
		for _, wr := range before {
			if !slices.ContainsFunc(v.Writers["c.p1"].Ranges, func(o WriterRange) bool { return o.Range == wr.Range && o.Epoch <= wr.Epoch }) {
				t.Fatalf("writer c.p1 forgot %s at epoch %d: %+v", wr.Range, wr.Epoch, v.Writers["c.p1"])
			}
		}
		if v.MaxID < 3 {
			t.Fatalf("the id counter went back to %d", v.MaxID)
		}
		if v.Incarnations["n1"].N < 3 {
			t.Fatalf("node n1's incarnation went back to %d", v.Incarnations["n1"].N)
		}
		if err != nil {
			return
		}
		for id, i := range v.Incarnations {
			if i.Node != id {
				t.Fatalf("incarnation of %q filed under %q", i.Node, id)
			}
		}
		for id, p := range v.Partitions {
			if p.ID != id {
				t.Fatalf("partition %d filed under %d", p.ID, id)
			}
			if p.Epoch > v.MaxEpoch {
				t.Fatalf("epoch %d above the max %d", p.Epoch, v.MaxEpoch)
			}
			if p.ID > v.MaxID {
				t.Fatalf("id %d above the id counter %d", p.ID, v.MaxID)
			}
		}
		for id, n := range v.Nodes {
			if n.ID != id {
				t.Fatalf("node %q filed under %q", n.ID, id)
			}
		}
		for id, w := range v.Writers {
			if w.ID != id {
				t.Fatalf("writer %q filed under %q", w.ID, id)
			}
			for _, wr := range w.Ranges {
				if wr.Range.From < 0 || wr.Range.From >= wr.Range.To {
					t.Fatalf("writer %s holds the range %s", id, wr.Range)
				}
				if wr.Epoch > v.MaxEpoch {
					t.Fatalf("writer %s epoch %d above the max %d", id, wr.Epoch, v.MaxEpoch)
				}
			}
		}
	})
}
