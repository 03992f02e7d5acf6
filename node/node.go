package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluicedb/sluice/changelog"
	"github.com/sluicedb/sluice/ingest"
	"github.com/sluicedb/sluice/partition"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/router"
	"github.com/sluicedb/sluice/server"
	"github.com/sluicedb/sluice/store"
)

// Node is one running sluice process.
type Node struct {
	cfg        Config
	kafkaLog   zerolog.Logger
	embedded   *kfake.Cluster
	brokers    []string
	topics     changelog.Topics
	table      atomic.Pointer[router.Table]
	partitions map[uint32]*partition.Partition
	grpc       *grpc.Server
	health     *health.Server
	dataLn     net.Listener
	httpSrv    *http.Server
	httpLn     net.Listener
	stop       chan struct{}
	wg         sync.WaitGroup
}

// Start brings a node up: Kafka, topics, partitions (restoring in the
// background), the gRPC and HTTP ports. It returns once the ports listen;
// partitions answer Unavailable until they have restored.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n = &Node{cfg: cfg, topics: changelog.Topics{Cluster: cfg.Cluster}, partitions: make(map[uint32]*partition.Partition), stop: make(chan struct{})}
	// franz-go logs through zerolog, one level quieter than sluice: its info
	// lines are per-connection chatter.
	n.kafkaLog = cfg.Log.With().Str("component", "kafka").Logger().Level(max(cfg.Log.GetLevel(), zerolog.WarnLevel))
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := n.startKafka(); err != nil {
		return nil, err
	}
	slots, err := n.ensureTopics(ctx)
	if err != nil {
		return nil, err
	}
	lay, err := loadLayout(cfg.DataDir, cfg.Cluster, slots, cfg.Partitions)
	if err != nil {
		return nil, err
	}

	n.dataLn, err = net.Listen("tcp", cfg.DataAddr)
	if err != nil {
		return nil, fmt.Errorf("node: data port: %w", err)
	}
	addr := advertise(n.dataLn.Addr(), cfg.AdvertiseAddr)
	var routes []router.Partition
	for _, lp := range lay.Partitions {
		routes = append(routes, router.Partition{ID: lp.ID, Range: lp.Range, Epoch: lp.Epoch, Node: cfg.NodeID, Addr: addr})
	}
	table, err := router.NewTable(slots, routes)
	if err != nil {
		return nil, err
	}
	n.table.Store(table)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := partition.NewMetrics(reg)
	ingestLag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_ingest_lag_records", Help: "Records of the ingest topic not yet consumed, per slot."}, []string{"slot"})
	reg.MustRegister(ingestLag)
	for _, lp := range lay.Partitions {
		p, err := n.openPartition(lp, slots, metrics, ingestLag)
		if err != nil {
			return nil, err
		}
		n.partitions[lp.ID] = p
	}

	n.grpc, n.health = server.NewGRPCServer(cfg.Log, reg)
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	server.RegisterData(n.grpc, &server.Data{
		Node:  cfg.NodeID,
		Table: n.table.Load,
		Local: func(id uint32) (*partition.Partition, bool) { p, ok := n.partitions[id]; return p, ok },
	})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.grpc.Serve(n.dataLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			cfg.Log.Error().Err(err).Msg("data port stopped")
		}
	}()
	if err := n.startHTTP(reg); err != nil {
		return nil, err
	}
	n.wg.Add(1)
	go n.watchHealth()
	cfg.Log.Info().Str("node", cfg.NodeID).Str("data_addr", addr).Strs("brokers", n.brokers).
		Int32("slots", slots).Int("partitions", len(n.partitions)).Msg("sluice node started")
	return n, nil
}

func (n *Node) kafkaOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(n.brokers...),
		kgo.ClientID("sluice-" + n.cfg.NodeID),
		kgo.WithLogger(kafkaLogger{n.kafkaLog}),
	}
}

func (n *Node) startKafka() error {
	if len(n.cfg.Brokers) > 0 {
		n.brokers = n.cfg.Brokers
		return nil
	}
	_, portStr, err := net.SplitHostPort(n.cfg.EmbeddedKafkaAddr)
	if err != nil {
		return fmt.Errorf("node: embedded kafka address %q: %w", n.cfg.EmbeddedKafkaAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("node: embedded kafka port %q: %w", portStr, err)
	}
	n.embedded, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(filepath.Join(n.cfg.DataDir, "kafka")))
	if err != nil {
		return fmt.Errorf("node: embedded kafka: %w", err)
	}
	n.brokers = n.embedded.ListenAddrs()
	n.cfg.Log.Info().Strs("addr", n.brokers).Msg("embedded Kafka-protocol broker (kfake) started; use --brokers for a real Kafka cluster")
	return nil
}

func (n *Node) ensureTopics(ctx context.Context) (int32, error) {
	cl, err := kgo.NewClient(n.kafkaOpts()...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return changelog.EnsureTopics(ctx, kadm.NewClient(cl), n.topics, n.cfg.Slots, n.cfg.ReplicationFactor)
}

func (n *Node) openPartition(lp layoutPartition, slots int32, metrics *partition.Metrics, ingestLag *prometheus.GaugeVec) (*partition.Partition, error) {
	dir := filepath.Join(n.cfg.DataDir, "partitions", "p"+strconv.FormatUint(uint64(lp.ID), 10))
	st, err := store.OpenBadger(store.BadgerOptions(dir))
	if err != nil {
		return nil, err
	}
	opts := n.kafkaOpts()
	topic := n.topics.Changelog()
	txnID := n.topics.TransactionalID(lp.ID)
	return partition.Start(partition.Config{
		ID: lp.ID, Range: lp.Range, Slots: slots, Epoch: lp.Epoch, Topic: topic, Store: st,
		NewAppender: func(ctx context.Context) (partition.Appender, error) {
			return changelog.NewAppender(ctx, changelog.AppenderConfig{Client: opts, TransactionalID: txnID})
		},
		Replay: func(ctx context.Context, from map[int32]int64, fn func(changelog.Batch) error) (map[int32]int64, error) {
			return changelog.Replay(ctx, opts, topic, from, fn)
		},
		Ingest: func(ctx context.Context, from map[int32]int64, deliver func([]partition.IngestRecord) error) error {
			return ingest.Consume(ctx, ingest.Config{Client: opts, Topic: n.topics.Ingest(), Lag: ingestLag}, from, deliver)
		},
		IngestTopic: n.topics.Ingest(),
		DLQTopic:    n.topics.DLQ(),
		Log:         n.cfg.Log,
		Metrics:     metrics,
	}), nil
}

// watchHealth reports SERVING on gRPC health and /healthz while every
// partition serves.
func (n *Node) watchHealth() {
	defer n.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		st := healthpb.HealthCheckResponse_SERVING
		if !n.Ready() {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		n.health.SetServingStatus("", st)
		n.health.SetServingStatus(sluicev1.Data_ServiceDesc.ServiceName, st)
	}
}

// Ready reports whether every partition of the node serves.
func (n *Node) Ready() bool {
	for _, p := range n.partitions {
		if !p.Serving() {
			return false
		}
	}
	return true
}

// DataAddr is the address the data port listens on.
func (n *Node) DataAddr() string { return advertise(n.dataLn.Addr(), n.cfg.AdvertiseAddr) }

// HTTPAddr is the address of the metrics port, or "" when disabled.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// Brokers are the Kafka seed brokers the node uses (the embedded one's too).
func (n *Node) Brokers() []string { return n.brokers }

// Close stops serving, stops the partitions (failing what is not yet
// acknowledged) and the embedded broker.
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
		close(n.stop)
	}
	if n.grpc != nil {
		done := make(chan struct{})
		go func() { n.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			n.grpc.Stop()
		}
	} else if n.dataLn != nil {
		n.dataLn.Close()
	}
	if n.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.httpSrv.Shutdown(ctx)
		cancel()
	}
	for _, p := range n.partitions {
		p.Close()
	}
	n.wg.Wait()
	if n.embedded != nil {
		n.embedded.Close()
	}
	return nil
}
