package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/sluicedb/sluice/node"
)

// storageConfig is the `storage:` section of the config file: the node's
// write-ahead log and store (flags win over it).
//
//	storage:
//	  wal: disk                 # kafka (default), disk or none
//	  store: cached             # badger (default), memory (with wal: none) or cached
//	  cache_dir: /mnt/nvme/sluice
//	  backup_every: 30s         # wal: none
//	  handoff_timeout: 1m
type storageConfig struct {
	WAL            string        `yaml:"wal"`
	Store          string        `yaml:"store"`
	CacheDir       string        `yaml:"cache_dir"`
	BackupEvery    time.Duration `yaml:"backup_every"`
	HandoffTimeout time.Duration `yaml:"handoff_timeout"`
}

// registerStorage adds the storage flags.
func registerStorage(f *pflag.FlagSet, cfg *node.Config) {
	f.StringVar(&cfg.WAL, "wal", cfg.WAL, "write-ahead log: kafka (a Kafka transaction per group), disk (each partition's Badger on --data-dir, synced before the ack) or none (memory only, backed up to --snapshot-url)")
	f.StringVar(&cfg.Store, "store", "", "store: badger, memory (the one for --wal none, its default) or cached (badger under a write-through cache in --cache-dir); default badger")
	f.StringVar(&cfg.CacheDir, "cache-dir", "", "a fast local disk (NVMe) for --store cached")
	f.DurationVar(&cfg.BackupEvery, "backup-every", cfg.BackupEvery, "--wal none: back each changed partition up to --snapshot-url this often (and once at shutdown); a crash loses the writes since")
	f.DurationVar(&cfg.HandoffTimeout, "handoff-timeout", cfg.HandoffTimeout, "--wal disk/none: how long a new owner waits for the previous owner's final snapshot")
}

// loadStorage reads the `storage:` section of a config file (unknown fields
// are refused) into cfg, for every setting whose flag was not given.
func loadStorage(path string, f *pflag.FlagSet, cfg *node.Config) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var file struct {
		Storage yaml.Node `yaml:"storage"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		return fmt.Errorf("config %s: %v", path, err)
	}
	if file.Storage.IsZero() {
		return nil
	}
	raw, err := yaml.Marshal(&file.Storage)
	if err != nil {
		return err
	}
	var s storageConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("config %s: storage (line %d): %v", path, file.Storage.Line, err)
	}
	set := func(flag string, apply func()) {
		if !f.Changed(flag) {
			apply()
		}
	}
	if s.WAL != "" {
		set("wal", func() { cfg.WAL = s.WAL })
	}
	if s.Store != "" {
		set("store", func() { cfg.Store = s.Store })
	}
	if s.CacheDir != "" {
		set("cache-dir", func() { cfg.CacheDir = s.CacheDir })
	}
	if s.BackupEvery != 0 {
		set("backup-every", func() { cfg.BackupEvery = s.BackupEvery })
	}
	if s.HandoffTimeout != 0 {
		set("handoff-timeout", func() { cfg.HandoffTimeout = s.HandoffTimeout })
	}
	return nil
}
