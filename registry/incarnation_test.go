package registry

import (
	"context"
	"testing"
)

// Every start of a node id registers the next incarnation, also when the
// starts are registered through different registries (nodes); every reader
// sees the latest.
func TestIncarnationsGrowByOne(t *testing.T) {
	r, cfg := open(t)
	other, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i, reg := range []*Registry{r, other, r} {
		var got Incarnation
		err := reg.Update(context.Background(), func(v *View) ([]Mutation, error) {
			inc, m := v.NextIncarnation(Incarnation{Node: "n1", DataAddr: "h:1", Dir: "boot/1/2"})
			got = inc
			return []Mutation{m}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.N != uint64(i+1) {
			t.Fatalf("start %d got incarnation %d", i+1, got.N)
		}
	}
	if err := other.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, reg := range []*Registry{r, other} {
		if inc := reg.View().Incarnations["n1"]; inc.N != 3 || inc.Dir != "boot/1/2" || inc.DataAddr != "h:1" {
			t.Fatalf("latest incarnation of n1: %+v, want the third", inc)
		}
	}
}
