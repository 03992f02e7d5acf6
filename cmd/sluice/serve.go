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
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/pipeline"
	"github.com/sluicedb/sluice/server"
)

func serveCmd() *cobra.Command {
	var (
		cfg       node.Config
		brokers   string
		logLevel  string
		logFormat string
		tokenFile string
		dataToken string
		config    string
		pprof     string
		kafka     kafkaSecurity
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a node (with an embedded Kafka-protocol broker unless --brokers is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			if cfg.Kafka, err = kafka.build(); err != nil {
				return err
			}
			if cfg.ControlToken, err = controlToken(tokenFile, cfg.DataDir, log); err != nil {
				return err
			}
			if dataToken != "" {
				if cfg.DataToken, err = readSecret(dataToken); err != nil {
					return fmt.Errorf("data token: %w", err)
				}
			}
			if pprof != "off" {
				cfg.Pprof = node.PprofAccess(pprof)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			n, err := node.Start(ctx, cfg)
			if err != nil {
				return err
			}
			<-ctx.Done()
			log.Info().Msg("shutting down")
			return n.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&config, "config", "", "config file (YAML): the write pipeline's stages and Kafka's TLS and SASL settings; see examples/sluice.yaml")
	f.StringVar(&cfg.NodeID, "node-id", "n1", "this node's id in the cluster")
	f.StringVar(&cfg.DataDir, "data-dir", "data", "directory for the partitions' stores (and the embedded broker)")
	f.StringVar(&cfg.Cluster, "cluster", "sluice", "cluster name: the prefix of every topic")
	f.StringVar(&brokers, "brokers", "", "Kafka seed brokers, host:port,...; empty runs an embedded broker")
	f.StringVar(&cfg.EmbeddedKafkaAddr, "embedded-kafka-addr", "127.0.0.1:7403", "where the embedded broker listens (without --brokers); it takes no credentials")
	f.StringVar(&cfg.DataAddr, "data-addr", "127.0.0.1:7400", "data-plane gRPC listen address (loopback unless you name another: 0.0.0.0:7400 for all)")
	f.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "data-plane address told to clients and other nodes (default: the listen address, 127.0.0.1 for 0.0.0.0)")
	f.StringVar(&dataToken, "data-token-file", "", "file holding a bearer token every data-plane call must carry (gRPC health excepted)")
	f.StringVar(&cfg.DataClientCA, "data-client-ca", "", "PEM CA: the data port requires client certificates it signed (mutual TLS; needs --tls-cert)")
	f.Uint32Var(&cfg.DataMaxStreams, "data-max-streams", server.DefaultMaxConcurrentStreams, "data-plane calls in flight per client connection (more wait)")
	f.StringVar(&cfg.ControlAddr, "control-addr", "127.0.0.1:7401", "control-plane gRPC listen address")
	f.StringVar(&cfg.AdvertiseControlAddr, "advertise-control-addr", "", "control address told to other nodes, which forward control calls to it (default: the listen address, 127.0.0.1 for 0.0.0.0)")
	f.StringVar(&tokenFile, "control-token-file", "", "file holding the control plane's bearer token, the same on every node (default: DATA-DIR/control.token, made if missing)")
	f.Uint32Var(&cfg.ControlMaxStreams, "control-max-streams", server.DefaultControlMaxConcurrentStreams, "control-plane calls in flight per client connection (more wait)")
	f.Float64Var(&cfg.ControlRate, "control-rate", 5, "control-plane calls a second")
	f.DurationVar(&cfg.Lease, "lease", time.Second, "read lease: how long a commit lets a partition answer committed reads; a new owner waits it out")
	bytesVar(f, &cfg.PartitionBudget, "partition-budget", 64<<20, "bytes of requests one partition holds (queued or awaiting their reply); more get RESOURCE_EXHAUSTED")
	bytesVar(f, &cfg.NodeBudget, "node-budget", 256<<20, "bytes of requests all of the node's partitions hold; more get RESOURCE_EXHAUSTED")
	f.StringVar(&cfg.SnapshotURL, "snapshot-url", "", "blob URL for snapshots (file:///dir, s3://bucket/prefix?region=...): uploads, and restores of partitions with no local state")
	f.IntVar(&cfg.SnapshotKeep, "snapshot-keep", 3, "snapshots kept per partition in --snapshot-url")
	f.StringVar(&cfg.SnapshotRoot, "snapshot-root", "", "the only folder snapshots are written under; a snapshot's path is taken relative to it (default DATA-DIR/snapshots)")
	f.DurationVar(&cfg.BlobTimeout, "blob-timeout", time.Minute, "cancel a call to --snapshot-url that makes no progress for this long (a restore then replays the whole changelog)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate: serve both gRPC ports over TLS")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM key of --tls-cert")
	f.StringVar(&cfg.TLSCA, "tls-ca", "", "PEM CA to verify other nodes' certificates (default: system roots)")
	f.StringVar(&cfg.ControlClientCA, "control-client-ca", "", "PEM CA: the control port requires client certificates it signed (mutual TLS)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:7402", "HTTP address for /metrics and /healthz; - disables")
	f.StringVar(&pprof, "pprof", "off", "serve /debug/pprof on the HTTP port: off, local (loopback clients; what --pprof alone means) or all")
	f.Lookup("pprof").NoOptDefVal = string(node.PprofLocal)
	kafka.register(f)
	f.Int32Var(&cfg.Slots, "slots", 16, "slot count (Kafka partitions per topic) of a new cluster")
	f.IntVar(&cfg.Partitions, "partitions", 4, "partitions a new node cuts the slots into")
	f.Int16Var(&cfg.ReplicationFactor, "replication-factor", 1, "replication factor of the topics sluice creates")
	registerStorage(f, &cfg)
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "auto", "json, console, or auto (console on a terminal)")
	return cmd
}

// controlToken reads the control plane's token from file or, with no file
// named, from DATA-DIR/control.token, making a random one there the first
// time. The token itself is never logged.
func controlToken(file, dataDir string, log zerolog.Logger) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("control token: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("control token: %s is empty", file)
	}
	path := filepath.Join(dataDir, "control.token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	log.Info().Str("file", path).Msg("made a control-plane token")
	return tok, nil
}
