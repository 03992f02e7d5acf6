package node

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/internal/kafkatest"
)

// startErr starts a node with cfg on local ports and returns Start's error
// (a node that started is closed at the test's end).
func startErr(t *testing.T, cfg Config) (*Node, error) {
	t.Helper()
	cfg.DataAddr, cfg.ControlAddr, cfg.HTTPAddr, cfg.ControlToken = "127.0.0.1:0", "127.0.0.1:0", "-", "test-token"
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	n, err := Start(context.Background(), cfg)
	if err == nil {
		t.Cleanup(func() { n.Close() })
	}
	return n, err
}

// Brief O, D1: a copy of an embedded broker's data directory (its log,
// registry included, is in it) is a fork of the cluster; it started beside
// its frozen original, or beside another copy, and both acknowledged
// different writes at the same offsets. Now a start on a directory that is
// not the one the node id last ran on is refused, naming --moved-data-dir;
// with it the copy starts; the original still restarts.
func TestCopiedEmbeddedDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	embedded := Config{DataDir: dir, Cluster: "embedded", Partitions: 1, Brokers: []string{}, EmbeddedKafkaAddr: "127.0.0.1:0"}
	first := startEmbedded(t, embedded)
	first.Close()
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}

	cfg := embedded
	cfg.DataDir = copied
	_, err := startErr(t, cfg)
	if !errors.Is(err, ErrDataDirCopied) || !strings.Contains(err.Error(), "--moved-data-dir") {
		t.Fatalf("a start on a copy of the data directory: %v, want ErrDataDirCopied naming --moved-data-dir", err)
	}
	t.Logf("refused: %v", err)

	if _, err := startErr(t, embedded); err != nil {
		t.Fatalf("the restart on the original directory: %v", err)
	}
	cfg.MovedDataDir = true
	if _, err := startErr(t, cfg); err != nil {
		t.Fatalf("a start with --moved-data-dir on the copy: %v", err)
	}
}

// The directory is the same after a reboot (a new boot id, the same lock
// file and host), never on another host or for another file.
func TestSameDirAcrossReboots(t *testing.T) {
	for _, c := range []struct {
		name         string
		a, ha, b, hb string
		want         bool
	}{
		{"the same boot", "boot1/5/10", "h", "boot1/5/10", "h", true},
		{"a reboot", "boot1/5/10", "h", "boot2/5/10", "h", true},
		{"a copy", "boot1/5/10", "h", "boot1/5/11", "h", false},
		{"a copy after a reboot", "boot1/5/10", "h", "boot2/5/11", "h", false},
		{"a cloned disk on another host", "boot1/5/10", "h", "boot2/5/10", "g", false},
		{"a host without a boot id", "", "h", "", "h", false},
	} {
		if got := sameDir(c.a, c.ha, c.b, c.hb); got != c.want {
			t.Errorf("%s: sameDir = %v, want %v", c.name, got, c.want)
		}
	}
}

// Brief O, D1: the process a node id last registered, frozen (kill -STOP),
// keeps its port open and answers nothing; a second process of the id
// started after the probe's 5 s with a warning and served beside it. Now
// the start is refused naming the other and --take-over, and starts with
// it. (The frozen process: a listener that accepts and never answers.)
func TestUnansweredProbeRefusesTheStart(t *testing.T) {
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		var held []net.Conn // read by nobody, answered never
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	cluster := kafkatest.ClusterName(t)
	first := startNode(t, Config{Cluster: cluster, Partitions: 1, AdvertiseAddr: hole.Addr().String()})
	first.Close()

	cfg := Config{DataDir: t.TempDir(), Cluster: cluster, Partitions: 1, Brokers: kafkatest.Brokers(t)}
	_, err = startErr(t, cfg)
	if !errors.Is(err, ErrPreviousUnknown) || !strings.Contains(err.Error(), hole.Addr().String()) || !strings.Contains(err.Error(), "--take-over") {
		t.Fatalf("a start while the previous process does not answer: %v, want ErrPreviousUnknown naming %s and --take-over", err, hole.Addr())
	}
	t.Logf("refused: %v", err)
	cfg.TakeOver = true
	if _, err := startErr(t, cfg); err != nil {
		t.Fatalf("a start with --take-over: %v", err)
	}
}
