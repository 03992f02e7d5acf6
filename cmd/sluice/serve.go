package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/sluicedb/sluice/internal/tlsfiles"
	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/pipeline"
)

func serveCmd() *cobra.Command {
	var (
		cfg       = node.DefaultConfig() // every flag's default comes from it
		tlsFiles  serveTLS
		brokers   string
		logLevel  string
		logFormat string
		tokenFile string
		regKey    string
		dataToken string
		config    string
		pprof     string
		kafka     kafkaSecurity
		memory    memoryFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a node (with an embedded Kafka-protocol broker unless --brokers is given)",
		Long: "Run a node (with an embedded Kafka-protocol broker unless --brokers is given).\n\n" +
			"Every flag can also be set in the --config file, its name as a top-level key (node-id: n1), and as\n" +
			"an environment variable SLUICE_<NAME> (SLUICE_NODE_ID=n1). A flag given on the command line wins\n" +
			"over the environment, which wins over the file, which wins over the default. Unknown keys in the\n" +
			"file are refused, naming the line.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd.Flags()); err != nil {
				return err
			}
			log, err := newLogger(os.Stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Log = log
			if config != "" {
				if cfg.Stages, err = pipeline.NewRegistry().LoadConfig(config); err != nil {
					return fmt.Errorf("config %w", err)
				}
			}
			if brokers != "" {
				cfg.Brokers = strings.Split(brokers, ",")
			}
			if kafka, err = loadKafkaSecurity(config, kafka); err != nil {
				return err
			}
			if err := loadStorage(config, cmd.Flags(), &cfg); err != nil {
				return err
			}
			if cfg.ReadCache == 0 {
				cfg.ReadCache = -1 // --read-cache 0: none (the node's 0 is its default)
			}
			if cfg.Kafka, err = kafka.build(); err != nil {
				return err
			}
			var saveToken func() error
			if cfg.ControlToken, saveToken, err = controlToken(tokenFile, cfg.DataDir, log); err != nil {
				return err
			}
			if regKey != "" {
				key, err := readSecret(regKey)
				if err != nil {
					return fmt.Errorf("registry key: %w", err)
				}
				cfg.RegistryKey = []byte(key)
			}
			if dataToken != "" {
				if cfg.DataToken, err = readSecret(dataToken); err != nil {
					return fmt.Errorf("data token: %w", err)
				}
			}
			cfg.Pprof = node.PprofAccess(pprof)
			if err := tlsFiles.apply(&cfg); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := memory.apply(ctx, cmd.Flags().Changed("gc-percent"), log); err != nil {
				return err
			}
			// Written once the ports are bound and before the registry is:
			// a busy port leaves no token file behind, and a start that
			// fails later leaves the token its registry records are sealed
			// under.
			cfg.BeforeRegistry = saveToken
			n, err := node.Start(ctx, cfg)
			if err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				log.Info().Msg("shutting down")
				return n.Close()
			case <-n.Done(): // a newer process of this node id took over, or the embedded broker stopped listening
				n.Close()
				return n.Err()
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&config, "config", "", "config file (YAML): any of these flags by name, the write pipeline's stages, Kafka's TLS and SASL settings, storage; see examples/sluice.yaml")
	f.StringVar(&cfg.NodeID, "node-id", cfg.NodeID, "this node's id in the cluster")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the partitions' stores (and the embedded broker)")
	f.StringVar(&cfg.Cluster, "cluster", cfg.Cluster, "cluster name: the prefix of every topic")
	f.StringVar(&brokers, "brokers", "", "Kafka seed brokers, host:port,...; empty runs an embedded broker")
	f.StringVar(&cfg.EmbeddedKafkaAddr, "embedded-kafka-addr", cfg.EmbeddedKafkaAddr, "where the embedded broker listens (without --brokers): one address, HOST:PORT; it takes only clients with the credentials in DATA-DIR/kafka.credentials (sluice kafka-credentials)")
	f.BoolVar(&cfg.TakeOver, "take-over", false, "start even if the process this node id last registered cannot be asked whether it is alive (its address does not answer within 5 s): only when you know it is gone")
	f.BoolVar(&cfg.MovedDataDir, "moved-data-dir", false, "with the embedded broker, start on a data directory that is not the one this node id last ran on (a deliberate move; never while another copy of it runs)")
	f.StringVar(&cfg.DataAddr, "data-addr", cfg.DataAddr, "data-plane gRPC listen address (loopback unless you name another: 0.0.0.0:7400 for all)")
	f.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "data-plane address told to clients and other nodes (default: the listen address, 127.0.0.1 for 0.0.0.0)")
	f.StringVar(&dataToken, "data-token-file", "", "file holding a bearer token every data-plane call must carry (gRPC health excepted)")
	f.StringVar(&cfg.RESPAddr, "resp-addr", "", "serve the data plane over the Redis protocol (RESP2/3) on HOST:PORT too, with the data port's token (AUTH), TLS and limits; off unless given")
	f.StringVar(&cfg.RESPConsistency, "resp-consistency", "linearizable", "the read level a RESP connection starts with: linearizable, session or eventual (SLUICE.CONSISTENCY changes it for one connection; this is for pooled clients and tools that cannot send it)")
	f.StringVar(&tlsFiles.dataClientCA, "data-client-ca", "", "PEM CA: the data port requires client certificates it signed (mutual TLS; needs --tls-cert)")
	f.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "connections each port (data, control, HTTP, the embedded broker) holds at once; more wait until one closes (default: an eighth of the open file limit, 256 to 16384)")
	f.Uint32Var(&cfg.DataMaxStreams, "data-max-streams", cfg.DataMaxStreams, "data-plane calls in flight per client connection (more wait)")
	f.StringVar(&cfg.ControlAddr, "control-addr", cfg.ControlAddr, "control-plane gRPC listen address")
	f.StringVar(&cfg.AdvertiseControlAddr, "advertise-control-addr", "", "control address told to other nodes, which forward control calls to it (default: the listen address, 127.0.0.1 for 0.0.0.0)")
	f.StringVar(&tokenFile, "control-token-file", "", "file holding the control plane's bearer token, the same on every node (default: DATA-DIR/control.token, made if missing)")
	f.StringVar(&regKey, "registry-key-file", "", "file holding the cluster key registry records are sealed under, the same on every node; records without its seal are ignored (default: derived from the control token)")
	f.BoolVar(&cfg.RegistryAdoptUnsealed, "registry-adopt-unsealed", false, "once, at the upgrade of a cluster whose registry was written before records were sealed: take its unsealed records and seal them")
	f.Uint32Var(&cfg.ControlMaxStreams, "control-max-streams", cfg.ControlMaxStreams, "control-plane calls in flight per client connection (more wait)")
	f.Float64Var(&cfg.ControlRate, "control-rate", cfg.ControlRate, "control-plane calls a second")
	f.DurationVar(&cfg.Lease, "lease", cfg.Lease, "read lease: how long a commit lets a partition answer committed reads; a new owner waits it out (not the first owner of a brand-new cluster)")
	f.DurationVar(&cfg.OwnershipLease, "ownership-lease", cfg.OwnershipLease, "--wal disk and none: how long a confirmation of ownership against the registry lets a partition commit and acknowledge; a new owner waits it out (not after its predecessor's final hand-off)")
	// The binary fails over by itself; an embedding's node.Config keeps
	// today's manual placement unless it asks.
	f.StringVar(&cfg.Failover, "failover", node.FailoverAuto, "auto: when a node leaves the cluster's Kafka group (its session timed out), its partitions are promoted on a standby or moved to the least loaded live node; manual: only an operator's sluice partitions move moves them")
	f.BoolVar(&cfg.Rebalance, "rebalance", true, "with --failover auto: when a node joins or comes back, partitions move onto it from the most loaded nodes, each once a standby of it there caught up (--wal kafka only)")
	f.IntVar(&cfg.MaxConcurrentMoves, "max-concurrent-moves", cfg.MaxConcurrentMoves, "partitions a rebalance moves at once")
	f.DurationVar(&cfg.SessionTimeout, "session-timeout", cfg.SessionTimeout, "how long the cluster's Kafka group waits for a silent node before its partitions fail over; a restart within it keeps them (6s to 30m)")
	bytesVar(f, &cfg.PartitionBudget, "partition-budget", cfg.PartitionBudget, "bytes of requests one partition holds (queued or awaiting their reply); more get RESOURCE_EXHAUSTED")
	bytesVar(f, &cfg.NodeBudget, "node-budget", cfg.NodeBudget, "bytes of requests all of the node's partitions hold; more get RESOURCE_EXHAUSTED")
	bytesVar(f, &cfg.ReadCache, "read-cache", cfg.ReadCache, "bytes of the node's cache of committed values, shared by its partitions, read before the store by every read and write; 0 disables it")
	bytesVar(f, &cfg.ReadMemory, "read-memory", cfg.ReadMemory, "bytes of read responses (Get, GetMany, Scan, Watch) the node holds at once; a read that cannot get its share within 2s gets RESOURCE_EXHAUSTED")
	f.StringVar(&cfg.SnapshotURL, "snapshot-url", "", "blob URL for snapshots (file:///dir, s3://bucket/prefix?region=...): uploads, and restores of partitions with no local state")
	f.IntVar(&cfg.SnapshotKeep, "snapshot-keep", cfg.SnapshotKeep, "snapshots kept per partition in --snapshot-url")
	f.StringVar(&cfg.SnapshotRoot, "snapshot-root", "", "the only folder snapshots are written under; a snapshot's path is taken relative to it (default DATA-DIR/snapshots)")
	f.DurationVar(&cfg.BlobTimeout, "blob-timeout", cfg.BlobTimeout, "cancel a call to --snapshot-url that makes no progress for this long (a restore then replays the whole changelog)")
	f.StringVar(&tlsFiles.cert, "tls-cert", "", "PEM certificate: serve both gRPC ports over TLS")
	f.StringVar(&tlsFiles.key, "tls-key", "", "PEM key of --tls-cert")
	f.StringVar(&tlsFiles.ca, "tls-ca", "", "PEM CA to verify other nodes' certificates (default: system roots)")
	f.StringVar(&tlsFiles.controlClientCA, "control-client-ca", "", "PEM CA: the control port requires client certificates it signed (mutual TLS)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "HTTP address for /metrics and /healthz; - disables")
	f.StringVar(&pprof, "pprof", string(cfg.Pprof), "serve /debug/pprof on the HTTP port: off, local (loopback clients; what --pprof alone means) or all")
	f.Lookup("pprof").NoOptDefVal = string(node.PprofLocal)
	memory.register(f)
	kafka.register(f)
	f.Int32Var(&cfg.Slots, "slots", cfg.Slots, "slot count (Kafka partitions per topic) of a new cluster")
	f.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions a new node cuts the slots into")
	f.Int16Var(&cfg.ReplicationFactor, "replication-factor", cfg.ReplicationFactor, "replication factor of the topics sluice creates")
	registerStorage(f, &cfg)
	f.StringVar(&logLevel, "log-level", "info", logLevels)
	f.StringVar(&logFormat, "log-format", "auto", "json, console, or auto (console on a terminal)")
	return cmd
}

// controlToken reads the control plane's token from file or, with no file
// named, from DATA-DIR/control.token; the first time, it makes a random one,
// which save writes there (once the node has started). The token itself is
// never logged.
func controlToken(file, dataDir string, log zerolog.Logger) (tok string, save func() error, err error) {
	nothing := func() error { return nil }
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", nil, fmt.Errorf("control token: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nothing, nil
		}
		return "", nil, fmt.Errorf("control token: %s is empty", file)
	}
	path := filepath.Join(dataDir, "control.token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nothing, nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, err
	}
	tok = hex.EncodeToString(raw[:])
	return tok, func() error {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			return err
		}
		log.Info().Str("file", path).Msg("made a control-plane token")
		return nil
	}, nil
}

// serveTLS are the node's TLS files, made into the *tls.Config values the
// node takes.
type serveTLS struct{ cert, key, ca, controlClientCA, dataClientCA string }

func (t serveTLS) apply(cfg *node.Config) error {
	if t.cert == "" && t.key == "" {
		if t.controlClientCA != "" || t.dataClientCA != "" {
			return fmt.Errorf("--control-client-ca and --data-client-ca need --tls-cert and --tls-key")
		}
		return nil
	}
	var err error
	if cfg.DataTLS, err = tlsfiles.Server(t.cert, t.key, t.dataClientCA); err != nil {
		return err
	}
	if cfg.ControlTLS, err = tlsfiles.Server(t.cert, t.key, t.controlClientCA); err != nil {
		return err
	}
	cfg.PeerTLS, err = tlsfiles.Client(t.ca, t.cert, t.key)
	return err
}
