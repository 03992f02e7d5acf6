package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluicedb/sluice/keyspace"
)

// layout is the partitions this node holds, kept in DataDir/layout.json so a
// restart opens the same partitions over the same ranges. (The cluster-wide
// registry replaces it once partitions are assigned by the control plane.)
type layout struct {
	Cluster    string            `json:"cluster"`
	Slots      int32             `json:"slots"`
	Partitions []layoutPartition `json:"partitions"`
}

type layoutPartition struct {
	ID    uint32         `json:"id"`
	Range keyspace.Range `json:"range"`
	Epoch uint64         `json:"epoch"`
}

// loadLayout reads the node's layout, or creates one cutting slots into n
// partitions.
func loadLayout(dir, cluster string, slots int32, n int) (layout, error) {
	path := filepath.Join(dir, "layout.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		l := layout{Cluster: cluster, Slots: slots}
		for i, r := range keyspace.Split(slots, n) {
			l.Partitions = append(l.Partitions, layoutPartition{ID: uint32(i + 1), Range: r, Epoch: 1})
		}
		b, err := json.MarshalIndent(l, "", "  ")
		if err != nil {
			return layout{}, err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return layout{}, err
		}
		return l, os.Rename(tmp, path)
	}
	if err != nil {
		return layout{}, err
	}
	var l layout
	if err := json.Unmarshal(b, &l); err != nil {
		return layout{}, fmt.Errorf("node: %s: %w", path, err)
	}
	if l.Cluster != cluster || l.Slots != slots {
		return layout{}, fmt.Errorf("node: %s belongs to cluster %q with %d slots, not %q with %d: use another --data-dir", path, l.Cluster, l.Slots, cluster, slots)
	}
	return l, nil
}
