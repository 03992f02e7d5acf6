package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/sluicedb/sluice/node"
)

// The config file's storage section sets the mode; a flag given wins; a
// misspelt setting is refused naming the line.
func TestStorageFromConfigAndFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	os.WriteFile(path, []byte("pipeline: []\nstorage:\n  wal: disk\n  store: cached\n  cache_dir: /nvme/sluice\n  backup_every: 30s\n"), 0o600)
	var cfg node.Config
	f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	registerStorage(f, &cfg)
	if err := f.Parse([]string{"--store", "badger"}); err != nil {
		t.Fatal(err)
	}
	if err := loadStorage(path, f, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.WAL != "disk" || cfg.Store != "badger" || cfg.CacheDir != "/nvme/sluice" || cfg.BackupEvery != 30*time.Second {
		t.Fatalf("config %+v", cfg)
	}
	os.WriteFile(path, []byte("storage:\n  wall: disk\n"), 0o600)
	if err := loadStorage(path, f, &cfg); err == nil || !strings.Contains(err.Error(), "wall") || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a misspelt setting: %v", err)
	}
}
