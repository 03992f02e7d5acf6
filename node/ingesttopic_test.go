package node

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Issue 23, item 6: a node of --wal disk or none consumes no ingest, so the
// ingest topic does not exist and a collector's produce to it fails with the
// broker's unknown-topic error, on the embedded broker and on Kafka (with
// auto.create.topics.enable off), instead of being acknowledged and lost.
func TestNoIngestTopicWhereNothingConsumesIt(t *testing.T) {
	for mode, cfg := range map[string]func() Config{
		"disk": func() Config { return Config{WAL: WALDisk} },
		"none": func() Config { return Config{WAL: WALNone, SnapshotURL: "file://" + t.TempDir()} },
	} {
		t.Run(mode+"/embedded", func(t *testing.T) {
			n := startEmbedded(t, cfg())
			creds, err := EmbeddedCredentialsIn(n.cfg.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			if err := produceTo(t, n.brokers, n.topics.Ingest(), creds.CollectorOpts()...); !errors.Is(err, kerr.UnknownTopicOrPartition) {
				t.Fatalf("a collector's produce to %s of a --wal %s node: %v, want UNKNOWN_TOPIC_OR_PARTITION", n.topics.Ingest(), mode, err)
			}
		})
		t.Run(mode+"/kafka", func(t *testing.T) {
			n := startNode(t, cfg())
			if err := produceTo(t, n.brokers, n.topics.Ingest()); !errors.Is(err, kerr.UnknownTopicOrPartition) {
				t.Fatalf("a produce to %s of a --wal %s node: %v, want UNKNOWN_TOPIC_OR_PARTITION", n.topics.Ingest(), mode, err)
			}
		})
	}
}
