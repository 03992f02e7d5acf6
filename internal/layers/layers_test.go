package layers

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sluicedb/sluice/"

// layer is each package's place in the README's import flow: a package
// imports only packages of lower layers. Test support (kafkalocal,
// kafkatest, snapshottest, integration) and tools (bench/fsync) import no
// layered package but kafkalocal.
var layer = map[string]int{
	"kv": 0, "clock": 0, "keyspace": 0, "pagetoken": 0, "proto/sluice/v1": 0,
	"internal/retry": 0, "internal/tlsfiles": 0, "internal/kvmodel": 0, "internal/kfakerepair": 0,
	"wal": 1, "store": 1, "router": 1, "pipeline": 1, "kafkaread": 1, "topics": 1, "kafkatxn": 1, "kafkasec": 1,
	"changelog": 2, "wal/local": 2, "snapshot": 2, "partition/core": 2,
	"partition": 3, "ingest": 3, "registry": 3,
	"server": 4, "client": 4, "membership": 4,
	"resp": 5, "bench": 5,
	"node":       6,
	"cmd/sluice": 7,
}

var support = []string{"internal/kafkalocal", "internal/kafkalocal/cmd/kafkalocal", "internal/kafkatest", "internal/dockertest", "integration/compose", "internal/layers", "snapshot/snapshottest", "integration", "bench/fsync", "proto"}

func TestImportsFlowOneWay(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		seen++
		own, layered := layer[rel]
		if !layered && !slices.Contains(support, rel) {
			t.Errorf("%s is in neither the layers nor the test support: place it (and in the README's Layout)", rel)
			return nil
		}
		for _, imp := range pkg.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			l, depLayered := layer[dep]
			switch {
			case !layered && depLayered:
				t.Errorf("%s (test support) imports %s", rel, dep)
			case layered && !depLayered:
				t.Errorf("%s imports %s, which is test support", rel, dep)
			case layered && l >= own:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports flow from higher layers to lower ones only", rel, own, dep, l)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < len(layer) {
		t.Fatalf("found %d packages, fewer than the %d layered ones", seen, len(layer))
	}
}
