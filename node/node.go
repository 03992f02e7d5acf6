package node

import (
	"context"
	"fmt"
	"github.com/sluicedb/sluice/internal/kfakerepair"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluicedb/sluice/ingest"
	"github.com/sluicedb/sluice/internal/retry"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/membership"
	"github.com/sluicedb/sluice/partition"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/registry"
	"github.com/sluicedb/sluice/resp"
	"github.com/sluicedb/sluice/router"
	"github.com/sluicedb/sluice/server"
	"github.com/sluicedb/sluice/snapshot"
	"github.com/sluicedb/sluice/topics"
)

// Node is one running sluice process.
type Node struct {
	began    time.Time // Start was called: restart-to-serve counts from here
	cfg      Config
	lock     *dirLock // held on cfg.DataDir while the node runs
	kafkaLog zerolog.Logger
	embedded *kfake.Cluster
	brokers  []string
	topics   topics.Names
	slots    int32
	// retention is the changelog's delete.retention.ms as the broker has it:
	// no store or snapshot out of sync for longer is replayed onto.
	retention time.Duration

	registry *registry.Registry
	table    atomic.Pointer[router.Table]
	// inc is this process's incarnation of its node id, prevInc the one
	// registered before it (incarnation.go).
	inc, prevInc registry.Incarnation
	// joinedAt is the highest epoch the registry had given when this
	// process registered its incarnation (registry/firstowner.go).
	joinedAt uint64
	done     chan struct{} // closed when the node stops serving of its own accord (Done)
	doneOnce sync.Once
	doneErr  error
	started  atomic.Bool // Start returned the node
	// ownership is the lease of --wal disk and none partitions (lease.go).
	ownership *ownership

	mu    sync.RWMutex
	parts map[uint32]*held // the partitions this node holds
	mgr   *manager         // the partition manager

	member        *membership.Member     // this node's seat in <cluster>.members (failover.go)
	failoverMoves *prometheus.CounterVec // partitions placed as the failover decider, by cause
	control       *server.Control        // the control plane (the decider asks peers through it)

	metrics   *partition.Metrics
	budget    *partition.Budget // bytes of requests all partitions hold
	readCache *partition.ReadCache
	ingestLag *ingest.Lag
	// changelogEnds are the changelog's committed ends, listed every
	// logEndsEvery: the standbys' lag counts from them (metrics.go).
	changelogEnds atomic.Pointer[logEnds]
	bucket        *snapshot.Bucket // where snapshots are uploaded and restored from; nil without --snapshot-url
	ops           operations

	dataSrv, controlSrv *grpc.Server
	health              *health.Server
	dataLn, controlLn   net.Listener
	data                *server.Data           // the data plane the data port serves (and the RESP port)
	panics              *prometheus.CounterVec // handler panics, by port and method
	resp                *resp.Server           // the RESP port (--resp-addr), if on
	respLn              net.Listener
	httpSrv             *http.Server
	httpLn              net.Listener
	stop                chan struct{}
	closeOnce           sync.Once
	wg                  sync.WaitGroup
}

// held is a partition this node owns (p) or keeps a standby of (sb), and the
// registry entry it was opened for.
type held struct {
	p     *partition.Partition
	sb    *partition.Standby
	spec  registry.Partition
	store localStore     // the durable store (modes.go): what snapshots read
	busy  sync.WaitGroup // snapshots reading the store: release waits for them
	// recorded: its partition.json says it served this epoch (markServed).
	recorded atomic.Bool
	// ctx is cancelled when the partition is released: it ends its snapshots.
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// Start brings a node up: Kafka, topics, the registry (announcing the node,
// and giving a new cluster its first partitions), the partition manager, the
// gRPC ports (once the routing table is loaded) and the HTTP port. It returns
// once the ports serve; partitions answer Unavailable until they have
// restored.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var err error
	began := time.Now()
	n := &Node{began: began, cfg: cfg, topics: topics.Names{Cluster: cfg.Cluster}, parts: make(map[uint32]*held), stop: make(chan struct{}), done: make(chan struct{}), budget: partition.NewBudget(cfg.NodeBudget), readCache: partition.NewReadCache(cfg.ReadCache)}
	// franz-go logs through zerolog, one level quieter than sluice: its info
	// lines are per-connection chatter.
	n.kafkaLog = cfg.Log.With().Str("component", "kafka").Logger().Level(max(cfg.Log.GetLevel(), zerolog.WarnLevel))
	if n.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			n.Close()
		}
	}()
	if err := n.startKafka(); err != nil {
		return nil, err
	}
	if err = n.ensureTopics(ctx); err != nil {
		return nil, explainKafka(cfg.Kafka, n.brokers, err)
	}
	if err = n.readyEmbedded(ctx); err != nil {
		return nil, err
	}
	if n.dataLn, err = net.Listen("tcp", cfg.DataAddr); err != nil {
		return nil, fmt.Errorf("node: data port: %w", err)
	}
	n.dataLn = n.limit(n.dataLn)
	if n.controlLn, err = net.Listen("tcp", cfg.ControlAddr); err != nil {
		return nil, fmt.Errorf("node: control port: %w", err)
	}
	n.controlLn = n.limit(n.controlLn)
	if cfg.RESPAddr != "" {
		if n.respLn, err = net.Listen("tcp", cfg.RESPAddr); err != nil {
			return nil, fmt.Errorf("node: RESP port: %w", err)
		}
		n.respLn = n.limit(n.respLn)
	}
	n.warnExposure()
	// The first record this node writes is sealed under a key derived from
	// its control token: the token is kept before it (a start that failed
	// after the registry write but before the token was kept left a
	// cluster no later start could read), and only once the ports are
	// bound (a busy port leaves no token behind).
	if cfg.BeforeRegistry != nil {
		if err := cfg.BeforeRegistry(); err != nil {
			return nil, err
		}
	}
	if err := n.joinRegistry(ctx); err != nil {
		return nil, explainKafka(cfg.Kafka, n.brokers, err)
	}
	if cfg.SnapshotURL != "" {
		if n.bucket, err = snapshot.OpenBucket(ctx, cfg.SnapshotURL, cfg.Cluster, snapshot.BucketOptions{Keep: cfg.SnapshotKeep, Timeout: cfg.BlobTimeout}); err != nil {
			return nil, err
		}
	}

	reg := n.registerMetrics()
	if err := n.startHTTP(reg); err != nil {
		return nil, err
	}
	// The first reconcile stores the routing table: only then do the gRPC
	// ports serve (until then their listeners hold the connections). A data
	// request served before would find no table (it once killed the node).
	n.mgr = newManager(cfg.NodeID, n.registry, n, n.updateTable, cfg.Log, n.stop)
	n.mgr.reconcile(n.removeStaleDirs)
	n.startGRPC(reg, cfg.transport())
	if err := n.startRESP(); err != nil {
		return nil, err
	}
	n.health.SetServingStatus(incarnationService(n.inc), healthpb.HealthCheckResponse_SERVING)
	n.wg.Add(5)
	go n.decide()
	go n.watchIncarnation()
	go n.manage()
	go n.watchHealth()
	go n.watchLogEnds()
	cfg.Log.Info().Str("node", cfg.NodeID).Str("data_addr", n.DataAddr()).Str("control_addr", n.ControlAddr()).
		Strs("brokers", n.brokers).Int32("slots", n.slots).Str("mode", cfg.Mode()).Msg("sluice node started")
	n.logModes()
	started = true
	n.started.Store(true)
	return n, nil
}

// joinRegistry opens the registry, registers this process's incarnation of
// the node id (refusing to start beside a live one, incarnation.go),
// announces the node and, in a cluster with no partitions yet, creates the
// first ones on this node. Every partition's
// producer is recorded as a writer of its slots (fencing follows slots): a
// new one in the same transaction as the partition, and one of a registry
// written before writers were recorded, here, once.
func (n *Node) joinRegistry(ctx context.Context) error {
	var err error
	n.registry, err = registry.Open(ctx, registry.Config{Client: n.kafkaOpts(), Topic: n.topics.Registry(), Key: n.cfg.RegistryKey, AdoptUnsealed: n.cfg.RegistryAdoptUnsealed, Log: n.cfg.Log})
	if err != nil {
		return err
	}
	adopted, skipped := n.registry.Unsealed()
	if skipped {
		return fmt.Errorf("node: %s holds records not sealed under this cluster's key and none that are: written by a sluice from before registry records were sealed "+
			"(start one node once with --registry-adopt-unsealed to seal them), with another --registry-key-file or control token, or forged; the node will not take it for an empty registry", n.topics.Registry())
	}
	if n.prevInc, err = n.previousIncarnation(ctx); err != nil {
		return err
	}
	// A member before it is announced (failover.go): only then, once no
	// other live process has the id (its static membership would be
	// taken over).
	if err := n.joinMembers(ctx); err != nil {
		return err
	}
	n.ownership = &ownership{reg: n.registry, lease: n.cfg.OwnershipLease}
	// The node's storage mode goes into its record: the control plane's
	// rules of where a partition's data can go read it (registry/modes.go).
	me := registry.Node{ID: n.cfg.NodeID, DataAddr: n.DataAddr(), ControlAddr: n.ControlAddr(), WAL: n.cfg.WAL, Bucket: n.cfg.SnapshotURL != ""}
	var (
		inc      registry.Incarnation
		joinedAt uint64
	)
	// Retried on a write that failed without the rules refusing it: two
	// nodes starting at the same moment (docker compose) fence each other's
	// registry transaction, and Kafka 4.1 answered one EndTxn with
	// UNKNOWN_SERVER_ERROR, which ended that node's start. Written or not,
	// the write is made again against the latest view: a new incarnation,
	// and a new cluster's partitions only if there are none yet.
	var refused error
	err = retry.Tries(ctx, 5, retry.ClientPolicy(), func(attempt int) (bool, error) {
		refused = nil
		err := n.registry.Update(ctx, n.announceSelf(me, adopted, &inc, &joinedAt, &refused))
		if err != nil && refused == nil && ctx.Err() == nil {
			n.cfg.Log.Warn().Err(err).Int("attempt", attempt+1).Msg("announcing this node in the registry failed; trying again")
			return true, err
		}
		return false, err
	})
	n.inc, n.joinedAt = inc, joinedAt
	return err
}

// announceSelf is the start's registry update: this node's record and a new
// incarnation, and, in a new cluster, its partitions. refused is set to the
// rules' own error, which is not retried.
func (n *Node) announceSelf(me registry.Node, adopted bool, inc *registry.Incarnation, joinedAt *uint64, refused *error) func(v *registry.View) ([]registry.Mutation, error) {
	return func(v *registry.View) (muts []registry.Mutation, err error) {
		defer func() { *refused = err }()
		if *inc != (registry.Incarnation{}) && v.Incarnations[n.cfg.NodeID] == *inc {
			return nil, nil // the attempt before was written after all
		}
		next, reg, err := n.nextIncarnation(v, n.prevInc)
		if err != nil {
			return nil, err
		}
		*inc, *joinedAt = next, v.MaxEpoch
		if other, wal := v.MixedModes(me.ID, me.WAL); other != "" {
			return nil, fmt.Errorf("node: this node runs --wal %s, but node %s of cluster %s announced --wal %s: a partition's data cannot follow its slots between modes (--wal kafka keeps it in the changelog, disk and none in the snapshot bucket), so a cluster runs one; start this node with --wal %s, or give it its own --cluster",
				me.WAL, other, n.cfg.Cluster, wal, wal)
		}
		if adopted { // a registry from before sealing, now sealed: later unsealed records are ignored
			muts = append(muts, v.Reseal()...)
		}
		muts = append(muts, reg)
		if v.Nodes[me.ID] != me {
			muts = append(muts, registry.PutNode(me))
		}
		parts := slices.Collect(maps.Values(v.Partitions))
		if len(v.Partitions) == 0 && v.MaxEpoch == 0 { // a new cluster
			epoch, bump := v.NextEpoch()
			muts = append(muts, bump)
			for i, r := range keyspace.Split(n.slots, n.cfg.Partitions) {
				p := registry.Partition{ID: uint32(i + 1), Range: r, Owner: me.ID, Epoch: epoch, Placed: registry.PlacedAdded}
				muts = append(muts, registry.PutPartition(p))
				parts = append(parts, p)
			}
		}
		for _, p := range parts {
			if w, ok := v.RecordWriter(n.topics.TransactionalID(p.ID), p.Range, p.Epoch); ok {
				muts = append(muts, w)
			}
		}
		return muts, nil
	}
}

// kafkaOpts are the options of every Kafka client the node makes (changelog
// appenders, replay and tails, ingest consumers, the registry, topic admin):
// the one place where the brokers and their TLS and SASL settings go.
func (n *Node) kafkaOpts() []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(n.brokers...),
		kgo.ClientID("sluice-" + n.cfg.NodeID),
		kgo.WithLogger(kafkaLogger{n.kafkaLog}),
	}, n.cfg.Kafka.Opts()...)
}

func (n *Node) startKafka() error {
	if len(n.cfg.Brokers) > 0 {
		n.brokers = n.cfg.Brokers
		return nil
	}
	creds, err := EmbeddedCredentialsIn(n.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("node: embedded kafka credentials: %w", err)
	}
	kopts, err := n.embeddedOpts(filepath.Join(n.cfg.DataDir, "kafka"), creds)
	if err != nil {
		return err
	}
	if err := n.repairEmbeddedLog(filepath.Join(n.cfg.DataDir, "kafka")); err != nil {
		return err
	}
	if err := kfakerepair.Opening(filepath.Join(n.cfg.DataDir, "kafka")); err != nil {
		return fmt.Errorf("node: embedded kafka: %w", err)
	}
	n.embedded, err = kfake.NewCluster(append(kopts, kfake.BrokerConfigs(embeddedBrokerConfigs))...)
	if err != nil {
		return fmt.Errorf("node: embedded kafka: %w", err)
	}
	n.brokers = n.embedded.ListenAddrs()
	n.cfg.Kafka.SASL = scram.Auth{User: embeddedNodeUser, Pass: creds.NodePassword}.AsSha256Mechanism()
	n.cfg.Log.Info().Strs("addr", n.brokers).Str("credentials", filepath.Join(n.cfg.DataDir, embeddedCredentialsFile)).
		Msg("embedded Kafka-protocol broker (kfake) started, SASL required (`sluice kafka-credentials` prints a collector's); use --brokers for a real Kafka cluster")
	return nil
}

// ensureTopics creates the topics that are missing, learns the slot count
// and the changelog's tombstone retention, and warns of every existing
// topic's setting that is not what sluice needs.
func (n *Node) ensureTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(n.kafkaOpts()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, err := topics.Ensure(ctx, cl, n.topics, n.cfg.Slots, n.cfg.ReplicationFactor, n.noIngestTopics()...)
	if err != nil {
		return err
	}
	for _, t := range st.Created {
		n.cfg.Log.Info().Str("topic", t).Msg("created topic")
	}
	n.warnStaleIngest(ctx, cl)
	for _, m := range st.Mismatches {
		n.cfg.Log.Warn().Str("topic", m.Topic).Str("setting", m.Setting).Str("found", m.Found).Str("needed", m.Want).Msg(m.String())
	}
	n.slots, n.retention = st.Slots, st.Retention
	return nil
}

// local returns the partition with id if this node holds it.
func (n *Node) local(id uint32) (*partition.Partition, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	h, ok := n.parts[id]
	if !ok || h.p == nil {
		return nil, false
	}
	return h.p, true
}

// standby returns this node's standby of partition id.
func (n *Node) standby(id uint32) (*partition.Standby, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	h, ok := n.parts[id]
	if !ok || h.sb == nil {
		return nil, false
	}
	return h.sb, true
}

// Registry, Slots and LocalStatus serve the control plane (server.Cluster).
func (n *Node) Registry() *registry.Registry { return n.registry }

func (n *Node) Slots() int32 { return n.slots }

func (n *Node) TransactionalID(partition uint32) string { return n.topics.TransactionalID(partition) }

func (n *Node) LocalStatus() []*sluicev1.PartitionInfo {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []*sluicev1.PartitionInfo
	for _, h := range n.parts {
		if h.p == nil {
			continue // a standby: not a partition this node holds
		}
		pi := &sluicev1.PartitionInfo{Id: h.spec.ID, Range: &sluicev1.SlotRange{From: h.spec.Range.From, To: h.spec.Range.To},
			Owner: h.spec.Owner, Epoch: h.spec.Epoch, ChangelogLag: h.p.Status().Lag, State: h.state(), Mode: n.cfg.Mode()}
		if keys, err := h.p.Len(); err == nil {
			pi.Keys = int64(keys)
		}
		out = append(out, pi)
	}
	return out
}

// LocalStandbys describes the standbys this node keeps, with how far each
// is behind the changelog (control NodeStatus: the rebalancer asks).
func (n *Node) LocalStandbys() []*sluicev1.StandbyInfo {
	var ends map[int32]int64
	if e := n.changelogEnds.Load(); e != nil {
		ends = e.ends
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []*sluicev1.StandbyInfo
	for id, h := range n.parts {
		if h.sb == nil {
			continue
		}
		behind := int64(-1)
		if ends != nil {
			behind = h.sb.Behind(ends)
		}
		out = append(out, &sluicev1.StandbyInfo{Id: id, Epoch: h.spec.Epoch, Behind: behind})
	}
	return out
}

// watchHealth reports SERVING on gRPC health and /healthz while every
// partition the node holds serves.
func (n *Node) watchHealth() {
	defer n.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	served := false
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		st := healthpb.HealthCheckResponse_SERVING
		if !n.Ready() {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		} else if !served {
			served = true
			n.cfg.Log.Info().Str("phase", "serving").Dur("took", time.Since(n.began)).
				Msg("node serving: every partition assigned here serves (restart-to-serve, checked every 100 ms)")
		}
		n.health.SetServingStatus("", st)
		n.health.SetServingStatus(sluicev1.Data_ServiceDesc.ServiceName, st)
	}
}

// Ready reports whether the node holds what the registry assigns it and every
// one of those partitions serves.
func (n *Node) Ready() bool {
	if n.Err() != nil {
		return false // superseded
	}
	v := n.registry.View()
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, p := range v.Partitions {
		if p.Owner != n.cfg.NodeID {
			continue
		}
		h, ok := n.parts[p.ID]
		if !ok || h.p == nil || !sameOwnership(h.spec, p) || !h.p.Serving() || !h.recorded.Load() {
			return false
		}
	}
	return true
}

// DataAddr is the data port's advertised address.
func (n *Node) DataAddr() string { return advertise(n.dataLn.Addr(), n.cfg.AdvertiseAddr) }

// ControlAddr is the control port's advertised address.
func (n *Node) ControlAddr() string {
	return advertise(n.controlLn.Addr(), n.cfg.AdvertiseControlAddr)
}

// HTTPAddr is the address of the metrics port, or "" when disabled.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// Brokers are the Kafka seed brokers the node uses (the embedded one's too).
func (n *Node) Brokers() []string { return n.brokers }

// Close stops serving, closes the partitions gracefully and stops the
// embedded broker. Every call returns once that is done.
func (n *Node) Close() error {
	n.closeOnce.Do(n.close)
	return nil
}

// close is Close, run once; every Close returns only once it is done.
func (n *Node) close() {
	close(n.stop)
	if n.member != nil {
		// First, and without leaving the group: the session times out
		// from here however long the graceful stop below takes, and a
		// restart within it keeps the node's partitions (membership/).
		n.member.Close()
	}
	if n.resp != nil {
		n.resp.Close(5 * time.Second) // as the gRPC ports' graceful stop
	}
	for _, s := range []*grpc.Server{n.dataSrv, n.controlSrv} {
		if s == nil {
			continue
		}
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.Stop()
		}
	}
	for _, ln := range []net.Listener{n.dataLn, n.controlLn, n.respLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if n.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.httpSrv.Shutdown(ctx)
		cancel()
	}
	if n.mgr != nil {
		// The first reconcile's workers run before manage does and add to
		// n.wg (markServed): they end (stop is closed) before n.wg is
		// waited for, or an Add from zero races with the Wait.
		n.mgr.workers.Wait()
	}
	n.wg.Wait()
	n.mu.Lock()
	parts := n.parts
	n.parts = map[uint32]*held{}
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.stopSnapshots(fmt.Errorf("%w: the node is closing", snapshot.ErrCancelled))
			h.busy.Wait()
			if h.sb != nil {
				h.sb.Close()
				h.store.Close()
				return
			}
			h.p.Close()
		}()
	}
	wg.Wait()
	if n.bucket != nil {
		n.bucket.Close()
	}
	if n.registry != nil {
		n.registry.Close()
	}
	if n.embedded != nil {
		n.embedded.Close()
		if err := kfakerepair.Closed(filepath.Join(n.cfg.DataDir, "kafka")); err != nil {
			n.cfg.Log.Warn().Err(err).Msg("embedded broker: could not record its clean close; the next start moves its topics past unused offsets, as after a crash")
		}
	}
	n.readCache.Close()
	n.lock.release()
}
