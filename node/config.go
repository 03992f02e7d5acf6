package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/pipeline"
)

// Config configures a node. Zero values take the defaults written on each field.
type Config struct {
	// NodeID names the node in the cluster. Default "n1".
	NodeID string
	// DataDir holds the partitions' stores (and the embedded broker's log). Default "data".
	DataDir string
	// Cluster prefixes every topic. Default "sluice".
	Cluster string
	// Brokers are Kafka's seed brokers. Empty: run an embedded Kafka-protocol
	// broker (kfake) persisted under DataDir/kafka.
	Brokers []string
	// EmbeddedKafkaAddr is where the embedded broker listens, 127.0.0.1:PORT.
	// Default 127.0.0.1:7403; port 0 picks a free one.
	EmbeddedKafkaAddr string
	// DataAddr is the data-plane gRPC listen address. Default ":7400".
	DataAddr string
	// AdvertiseAddr is the data-plane address other nodes and clients are told
	// (in BadNode and routes). Default: DataAddr with 127.0.0.1 for an empty host.
	AdvertiseAddr string
	// ControlAddr is the control-plane gRPC listen address. Default ":7401".
	ControlAddr string
	// ControlToken is the bearer token every control call must carry.
	// Required: cmd/sluice reads it from --control-token-file or makes one.
	ControlToken string
	// ControlRate is the control plane's calls a second. Default 5.
	ControlRate float64
	// Stages run on every upsert, gRPC and ingest alike (from --config).
	Stages []pipeline.Stage
	// Lease is how long a partition's last commit lets it answer reads of
	// committed values without a new commit; a new owner waits it out after
	// fencing. Default 1s.
	Lease time.Duration
	// SnapshotURL, if set, is a blob URL (file:///…, s3://bucket/prefix?region=…)
	// where snapshots are uploaded and from which a partition with no local
	// state is restored.
	SnapshotURL string
	// SnapshotKeep is how many snapshots per partition the bucket keeps. Default 3.
	SnapshotKeep int
	// SnapshotRoot is the only folder snapshots may be written under: a
	// Snapshot call's path is taken relative to it, and one that leaves it is
	// refused. Default DataDir/snapshots.
	SnapshotRoot string
	// BlobTimeout bounds every call to the snapshot bucket: one that makes no
	// progress for this long is cancelled (an upload fails; a restore falls
	// back to replaying the whole changelog). Default 1 minute.
	BlobTimeout time.Duration
	// TLSCert and TLSKey (PEM files), if set, put both gRPC ports on TLS.
	TLSCert, TLSKey string
	// TLSCA (PEM) verifies the peers' certificates when this node calls
	// another node's control plane. Default: the system roots.
	TLSCA string
	// ControlClientCA (PEM), if set, makes the control port require client
	// certificates it signed: mutual TLS.
	ControlClientCA string
	// HTTPAddr serves /metrics, /healthz and /debug/pprof. Default ":7402";
	// "-" disables it.
	HTTPAddr string
	// Slots is the slot count of a new cluster (an existing cluster keeps its
	// own). Default 16.
	Slots int32
	// Partitions is how many partitions the first node of a new cluster cuts
	// the slots into, all its own. Default 4.
	Partitions int
	// ReplicationFactor of the topics sluice creates. Default 1.
	ReplicationFactor int16
	Log               zerolog.Logger
}

func (c *Config) setDefaults() error {
	if c.NodeID == "" {
		c.NodeID = "n1"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Cluster == "" {
		c.Cluster = "sluice"
	}
	if c.SnapshotRoot == "" {
		c.SnapshotRoot = filepath.Join(c.DataDir, "snapshots")
	}
	if c.BlobTimeout == 0 {
		c.BlobTimeout = time.Minute
	}
	if c.EmbeddedKafkaAddr == "" {
		c.EmbeddedKafkaAddr = "127.0.0.1:7403"
	}
	if c.DataAddr == "" {
		c.DataAddr = ":7400"
	}
	if c.ControlAddr == "" {
		c.ControlAddr = ":7401"
	}
	if c.Lease == 0 {
		c.Lease = time.Second
	}
	if c.ControlRate == 0 {
		c.ControlRate = 5
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":7402"
	}
	if c.Slots == 0 {
		c.Slots = keyspace.DefaultSlots
	}
	if c.Partitions == 0 {
		c.Partitions = 4
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.ControlToken == "" {
		return errors.New("node: a control-plane token is required")
	}
	if c.Partitions < 1 || int32(c.Partitions) > c.Slots {
		return fmt.Errorf("node: %d partitions cannot cut %d slots", c.Partitions, c.Slots)
	}
	if len(c.Cluster) > 100 {
		return errors.New("node: cluster name must be 1 to 100 characters")
	}
	return os.MkdirAll(c.DataDir, 0o755)
}

// advertise turns a listen address into one others can dial.
func advertise(listen net.Addr, configured string) string {
	if configured != "" {
		return configured
	}
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
