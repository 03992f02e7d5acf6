package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 28.7: every serve flag is settable in the config file and as
// $SLUICE_<NAME>, with one precedence: flag > env > file > default. Unknown
// top-level keys were ignored (brokers: and node_id: did nothing).
func TestEveryServeFlagFromEnvAndConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(file, []byte("node_id: from-file\ncluster: from-file\nbrokers: [a:9092, b:9092]\nlease: 3s\nstorage:\n  wal: kafka\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := serveCmd()
	fs := cmd.Flags()
	if err := fs.Parse([]string{"--config", file, "--node-id", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_NODE_ID", "from-env")
	t.Setenv("SLUICE_CLUSTER", "from-env")
	if err := applyEnvAndConfig(fs); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"node-id":   "from-flag",      // flag > env > file
		"cluster":   "from-env",       // env > file
		"brokers":   "a:9092,b:9092",  // file > default
		"lease":     "3s",             // file > default
		"data-addr": "127.0.0.1:7400", // the default
	} {
		if got := fs.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}

func TestUnknownConfigKeysAreRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(file, []byte("cluster: c\nnodeid: n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := serveCmd().Flags()
	if err := fs.Parse([]string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	err := applyEnvAndConfig(fs)
	if err == nil || !strings.Contains(err.Error(), "sluice.yaml line 2: unknown key \"nodeid\"") {
		t.Fatalf("an unknown key: %v", err)
	}
	t.Setenv("SLUICE_LEASE", "banana")
	fs = serveCmd().Flags()
	if err := applyEnvAndConfig(fs); err == nil || !strings.Contains(err.Error(), "$SLUICE_LEASE") {
		t.Fatalf("a bad $SLUICE_LEASE: %v", err)
	}
}
