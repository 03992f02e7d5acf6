package registry

import (
	"testing"

	"github.com/sluicedb/sluice/keyspace"
)

// The rule over the registry: only the process that created epoch 1, still
// its node id's newest, over slots no other producer ever held.
func TestFirstOwnerRule(t *testing.T) {
	r := keyspace.Range{From: 0, To: 8}
	spec := Partition{ID: 1, Range: r, Owner: "n1", Epoch: 1}
	inc := Incarnation{Node: "n1", N: 1}
	brandNew := func() *View {
		return &View{
			MaxEpoch:     1,
			Incarnations: map[string]Incarnation{"n1": inc},
			Partitions:   map[uint32]Partition{1: spec, 2: {ID: 2, Range: keyspace.Range{From: 8, To: 16}, Owner: "n1", Epoch: 1}},
			Writers: map[string]Writer{
				"c.p1": {ID: "c.p1", Ranges: []WriterRange{{Range: r, Epoch: 1}}},
				"c.p2": {ID: "c.p2", Ranges: []WriterRange{{Range: keyspace.Range{From: 8, To: 16}, Epoch: 1}}},
			},
		}
	}
	if !brandNew().FirstOwner(spec, "c.p1", inc, 0) {
		t.Fatal("a brand-new cluster's partition, opened by the process that created it, waits")
	}
	for _, tc := range []struct {
		name     string
		change   func(v *View, spec *Partition, inc *Incarnation, joinedAt *uint64)
		whyWaits string
	}{
		{"a later epoch", func(v *View, s *Partition, _ *Incarnation, _ *uint64) {
			s.Epoch = 2
		}, "an earlier owner may answer within its lease"},
		{"a later process of the node id", func(_ *View, _ *Partition, i *Incarnation, j *uint64) {
			i.N, *j = 2, 1
		}, "the process that created it may be alive behind a cut"},
		{"a newer process registered since", func(v *View, _ *Partition, _ *Incarnation, _ *uint64) {
			v.Incarnations["n1"] = Incarnation{Node: "n1", N: 2}
		}, "this process is superseded"},
		{"another node's partition", func(_ *View, s *Partition, _ *Incarnation, _ *uint64) {
			s.Owner = "n2"
		}, "the incarnation is not the owner's"},
		{"a removed partition held some of its slots", func(v *View, _ *Partition, _ *Incarnation, _ *uint64) {
			v.Writers["c.p9"] = Writer{ID: "c.p9", Ranges: []WriterRange{{Range: keyspace.Range{From: 6, To: 10}, Epoch: 3}}}
		}, "the removed partition's owner may answer within its lease"},
		{"its producer once held another range over its slots", func(v *View, _ *Partition, _ *Incarnation, _ *uint64) {
			w := v.Writers["c.p1"]
			w.Ranges = append(w.Ranges, WriterRange{Range: keyspace.Range{From: 0, To: 4}, Epoch: 1})
			v.Writers["c.p1"] = w
		}, "it served other slots' reads under another range"},
	} {
		v, s, i, joined := brandNew(), spec, inc, uint64(0)
		tc.change(v, &s, &i, &joined)
		if v.FirstOwner(s, "c.p1", i, joined) {
			t.Errorf("%s: skips the lease wait, but %s", tc.name, tc.whyWaits)
		}
	}
	// Another producer over other slots only: still brand-new.
	v := brandNew()
	v.Writers["c.p3"] = Writer{ID: "c.p3", Ranges: []WriterRange{{Range: keyspace.Range{From: 8, To: 12}, Epoch: 4}}}
	if !v.FirstOwner(spec, "c.p1", inc, 0) {
		t.Fatal("a producer of other slots made a brand-new partition wait")
	}
}
