package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/sluicedb/sluice/resp"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicedb/sluice/kafkasec"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/partition"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/server"
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
	// EmbeddedKafkaAddr is where the embedded broker listens, HOST:PORT: one
	// address, which it also tells its clients (0.0.0.0 is refused). It
	// takes only the SASL credentials in DataDir/kafka.credentials
	// (embedded.go). Default 127.0.0.1:7403; port 0 picks a free one.
	EmbeddedKafkaAddr string
	// TakeOver starts the node even when the process its node id last
	// registered cannot be asked whether it is alive (its address does not
	// answer within the probe's 5 s): for an operator who knows that
	// process is gone (its host is down). Without it such a start is
	// refused, naming the other process (incarnation.go).
	TakeOver bool
	// MovedDataDir starts a node on an embedded broker whose data directory
	// is not the one its node id last ran on (a copy, or a move to another
	// disk or host): for an operator who moved it deliberately and runs no
	// other copy. Without it such a start is refused (incarnation.go).
	MovedDataDir bool
	// Kafka secures the connections to Brokers (TLS, SASL) of every Kafka
	// client the node makes. Default: plaintext, no authentication.
	Kafka kafkasec.Security
	// DataAddr is the data-plane gRPC listen address. Default
	// "127.0.0.1:7400": like Redis's protected mode, a node listens on
	// loopback only unless the operator names another address.
	DataAddr string
	// AdvertiseAddr is the data-plane address other nodes and clients are told
	// (in BadNode and routes). Default: DataAddr with 127.0.0.1 for an empty
	// or unspecified host.
	AdvertiseAddr string
	// DataToken, if set, is the bearer token every data-plane call but gRPC
	// health must carry.
	DataToken string
	// MaxConnections bounds the connections each port (data, control,
	// HTTP, the embedded broker) holds open at once; more wait in the
	// kernel's backlog until one closes. A flood of idle connections then
	// cannot take the file descriptors the node needs for its own files and
	// broker connections (connlimit.go). Default: an eighth of the open
	// file limit, between 256 and 16,384.
	MaxConnections int
	// DataMaxStreams bounds the data-plane calls in flight on one connection
	// (more wait). Default server.DefaultMaxConcurrentStreams.
	DataMaxStreams uint32
	// ControlAddr is the control-plane gRPC listen address. Default "127.0.0.1:7401".
	ControlAddr string
	// AdvertiseControlAddr is the control address other nodes are told, to
	// forward control calls (snapshots, operations, partition state) to this
	// node. Default: ControlAddr with 127.0.0.1 for an empty or unspecified
	// host, which other hosts cannot reach.
	AdvertiseControlAddr string
	// ControlToken is the bearer token every control call must carry. Every
	// node of a cluster needs the same one: nodes call each other with it.
	// Required: cmd/sluice reads it from --control-token-file or makes one.
	ControlToken string
	// RegistryKey is the cluster key every registry record is sealed under
	// (registry/seal.go): a record without its seal, such as one any client
	// of the broker can produce, is ignored and logged, so it cannot
	// redirect clients or control calls. Every node of a cluster needs the
	// same one. Default: derived from ControlToken (registry.DeriveKey),
	// which every node shares already.
	RegistryKey []byte
	// RegistryAdoptUnsealed takes the unsealed records of a registry written
	// before records were sealed, and seals them: for one start at the
	// upgrade. Default: a registry of unsealed records only refuses the start.
	RegistryAdoptUnsealed bool
	// ControlMaxStreams bounds the control calls in flight on one
	// connection. Default server.DefaultControlMaxConcurrentStreams.
	ControlMaxStreams uint32
	// ControlRate is the control plane's calls a second. Default 5.
	ControlRate float64
	// Stages run on every upsert, gRPC and ingest alike (from --config).
	Stages []pipeline.Stage
	// Lease is how long a partition's last commit lets it answer reads of
	// committed values without a new commit; a new owner waits it out after
	// fencing. Default 1s.
	Lease time.Duration
	// OwnershipLease is how long a --wal disk or none partition's last
	// confirmation against the registry lets it commit and acknowledge
	// (lease.go); a new owner waits it out. Longer than Lease: each of its
	// commits waits on it, and on a loaded machine a registry read can take
	// a second (with 1s, disk-mode writers saw UNKNOWN and big groups were
	// never acknowledged). Default 10s.
	OwnershipLease time.Duration
	// Failover is who places partitions when a node leaves the cluster
	// (failover.go): FailoverAuto, the group's decider promotes or moves
	// them; FailoverManual, only an operator's move does (this node still
	// joins the group, so the others see it live, but never decides).
	// Default manual here; the binary's --failover defaults to auto.
	Failover string
	// SessionTimeout is how long the <cluster>.members group waits for a
	// silent node before it counts as departed and its partitions fail
	// over. A restart within it keeps the node's partitions. Default
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	// Rebalance, with FailoverAuto, makes the decider also rebalance
	// partitions onto nodes that joined or came back
	// (registry/rebalance.go). Default off here; the binary's --rebalance
	// defaults to on.
	Rebalance bool
	// MaxConcurrentMoves bounds the partitions a rebalance moves at once.
	// Default 2.
	MaxConcurrentMoves int
	// BeforeRegistry, if set, runs once the ports are bound and before the
	// node writes its first registry record (the CLI keeps a control token
	// it made there). An error fails the start.
	BeforeRegistry func() error
	// PartitionBudget bounds the bytes of requests one partition holds
	// (queued or waiting for their reply); NodeBudget bounds them across the
	// node's partitions. Beyond either, writes get RESOURCE_EXHAUSTED with a
	// NotApplied detail. Defaults 64 MiB and 256 MiB.
	PartitionBudget int64
	NodeBudget      int64
	// ReadCache is the byte budget of the node's cache of committed values
	// (partition.ReadCache), shared by its partitions: reads of every
	// consistency level and most writes look there before the store.
	// Default partition.DefaultReadCache; negative disables it.
	ReadCache int64
	// ReadMemory bounds the bytes of read responses (Get, GetMany, Scan,
	// Watch) the node holds at once; a read that cannot get its share
	// soon gets RESOURCE_EXHAUSTED. Default server.DefaultReadMemory.
	ReadMemory int64
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
	// DataTLS, if set, serves the data port over TLS; with ClientCAs and
	// ClientAuth set it requires client certificates (mutual TLS). The CLI
	// makes it from --tls-cert, --tls-key and --data-client-ca.
	DataTLS *tls.Config
	// ControlTLS is DataTLS for the control port (--control-client-ca).
	ControlTLS *tls.Config
	// PeerTLS, if set, is how the node calls its peers' control planes over
	// TLS: the CA of their certificates and its own to present. Default
	// plaintext.
	PeerTLS *tls.Config
	// HTTPAddr serves /metrics and /healthz (and /debug/pprof with Pprof).
	// Default "127.0.0.1:7402"; "-" disables it.
	HTTPAddr string
	// RESPAddr, if set, serves the data plane over the Redis protocol
	// (resp/) on this address, with the data port's token (AUTH), TLS and
	// limits. Default "": off.
	RESPAddr string
	// RESPConsistency is the read level a RESP connection starts with
	// (SLUICE.CONSISTENCY changes it for the connection): "linearizable"
	// (the default, also ""), "session" or "eventual". For pooled clients
	// and tools that cannot send a command on each new connection.
	RESPConsistency string
	// Pprof serves /debug/pprof on the HTTP port: PprofOff (the default),
	// PprofLocal (to loopback clients only) or PprofAll (to every client of
	// the HTTP port).
	Pprof PprofAccess
	// Slots is the slot count of a new cluster (an existing cluster keeps its
	// own). Default 16.
	Slots int32
	// Partitions is how many partitions the first node of a new cluster cuts
	// the slots into, all its own. Default 4.
	Partitions int
	// ReplicationFactor of the topics sluice creates. Default 1.
	ReplicationFactor int16
	// WAL is the partitions' write-ahead log (modes.go): "kafka" (the
	// default), "disk" (each partition's Badger store, synced before every
	// ack) or "none" (with Store "memory": backups only).
	WAL string
	// Store is the partitions' store: "badger" (the default with WAL kafka
	// and disk), "memory" (the default, and the only one, with WAL none) or
	// "cached" (badger under a write-through cache in CacheDir).
	Store string
	// CacheDir holds the caches of Store "cached": a fast local disk.
	CacheDir string
	// BackupEvery is how often a partition of WAL "none" is backed up to the
	// snapshot bucket when it changed (and once more when it closes).
	// Default 1 minute.
	BackupEvery time.Duration
	// HandoffTimeout bounds how long a new owner of a partition of WAL
	// "disk" or "none" waits for the previous owner's final snapshot before
	// it restores the newest one there is. Default 1 minute.
	HandoffTimeout time.Duration
	Log            zerolog.Logger
}

// DefaultConfig is every default of a node's configuration, in one place:
// Start fills each zero field of its Config from it, and the CLI's flags
// take their defaults from it.
func DefaultConfig() Config {
	return Config{
		NodeID:             "n1",
		DataDir:            "data",
		Cluster:            "sluice",
		EmbeddedKafkaAddr:  "127.0.0.1:7403",
		DataAddr:           "127.0.0.1:7400",
		ControlAddr:        "127.0.0.1:7401",
		HTTPAddr:           "127.0.0.1:7402",
		Lease:              time.Second,
		OwnershipLease:     10 * time.Second,
		PartitionBudget:    64 << 20,
		NodeBudget:         256 << 20,
		ReadMemory:         server.DefaultReadMemory,
		ReadCache:          partition.DefaultReadCache,
		ControlRate:        5,
		Slots:              keyspace.DefaultSlots,
		Partitions:         4,
		ReplicationFactor:  1,
		MaxConnections:     defaultMaxConnections(),
		DataMaxStreams:     server.DefaultMaxConcurrentStreams,
		ControlMaxStreams:  server.DefaultControlMaxConcurrentStreams,
		SnapshotKeep:       3,
		BlobTimeout:        time.Minute,
		WAL:                WALKafka,
		BackupEvery:        time.Minute,
		HandoffTimeout:     time.Minute,
		Pprof:              PprofOff,
		Failover:           FailoverManual,
		SessionTimeout:     DefaultSessionTimeout,
		MaxConcurrentMoves: 2,
	}
}

// fillZero sets every zero field of dst to the same field of def.
func fillZero(dst *Config, def Config) {
	d, v := reflect.ValueOf(dst).Elem(), reflect.ValueOf(def)
	for i := range d.NumField() {
		if f := d.Field(i); f.CanSet() && f.IsZero() {
			f.Set(v.Field(i))
		}
	}
}

func (c *Config) setDefaults() error {
	fillZero(c, DefaultConfig())
	if c.SnapshotRoot == "" {
		c.SnapshotRoot = filepath.Join(c.DataDir, "snapshots")
	}
	switch c.Pprof {
	case PprofOff, PprofLocal, PprofAll:
	default:
		return fmt.Errorf("node: pprof access %q is none of off, local, all", c.Pprof)
	}
	if err := checkKafka(c.Kafka, len(c.Brokers) > 0); err != nil {
		return err
	}
	if c.ControlToken == "" {
		return errors.New("node: a control-plane token is required")
	}
	if len(c.RegistryKey) == 0 {
		c.RegistryKey = registry.DeriveKey(c.ControlToken)
	}
	if len(c.RegistryKey) < 16 {
		return fmt.Errorf("node: the registry key is %d bytes; it needs at least 16", len(c.RegistryKey))
	}
	if c.MaxConnections < minMaxConnections {
		return fmt.Errorf("node: --max-connections %d is below the minimum of %d (the node's own clients of its embedded broker need them)", c.MaxConnections, minMaxConnections)
	}
	if c.Partitions < 1 || int32(c.Partitions) > c.Slots {
		return fmt.Errorf("node: %d partitions cannot cut %d slots", c.Partitions, c.Slots)
	}
	if err := c.checkModes(); err != nil {
		return err
	}
	if err := c.checkFailover(); err != nil {
		return err
	}
	if _, err := resp.ParseConsistency(c.RESPConsistency); err != nil {
		return fmt.Errorf("node: --resp-consistency: %w", err)
	}
	if len(c.Cluster) > 100 {
		return errors.New("node: cluster name must be 1 to 100 characters")
	}
	return os.MkdirAll(c.DataDir, 0o755)
}

// isLoopback reports whether a listener only takes connections from this host.
func isLoopback(a net.Addr) bool {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// unspecified reports whether a listener takes connections on every address
// (":7401", "0.0.0.0:7401", "[::]:7401").
func unspecified(a net.Addr) bool {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// warnExposure says what an operator who named non-loopback addresses may
// not have meant: a data plane anyone on the network can use, and addresses
// advertised as 127.0.0.1 that other hosts cannot reach.
func (n *Node) warnExposure() {
	log := n.cfg.Log
	if n.cfg.DataToken == "" && !mutual(n.cfg.DataTLS) && !isLoopback(n.dataLn.Addr()) {
		log.Warn().Str("data_addr", n.dataLn.Addr().String()).
			Msg("the data plane listens beyond this host without authentication: anyone who reaches it can read and write every key (set --data-token-file or --data-client-ca)")
	}
	if n.respLn != nil && n.cfg.DataToken == "" && !mutual(n.cfg.DataTLS) && !isLoopback(n.respLn.Addr()) {
		log.Warn().Str("resp_addr", n.respLn.Addr().String()).
			Msg("the RESP port listens beyond this host without authentication: anyone who reaches it can read and write every key (set --data-token-file or --data-client-ca)")
	}
	if unspecified(n.dataLn.Addr()) && n.cfg.AdvertiseAddr == "" {
		log.Warn().Str("advertised", n.DataAddr()).Msg("the data address told to clients and other nodes is on 127.0.0.1, which other hosts cannot reach: set --advertise-addr")
	}
	if unspecified(n.controlLn.Addr()) && n.cfg.AdvertiseControlAddr == "" {
		log.Warn().Str("advertised", n.ControlAddr()).Msg("the control address told to other nodes is on 127.0.0.1, which other hosts cannot reach: set --advertise-control-addr")
	}
}
