// Package registry is the cluster's desired state, kept in the compacted
// <cluster>.registry topic: which partitions exist (id → slot range, owner,
// epoch), which nodes have announced themselves (id → addresses), which
// changelog producers were ever given which slots (writers.go), and which
// process is each node id now (its latest incarnation, incarnation.go).
//
//	r, _ := registry.Open(ctx, registry.Config{Client: opts, Topic: topics.Registry()})
//	v := r.View()                       // immutable; a change makes a new one
//	<-r.Changed()                       // closed at the next change
//	err := r.Update(ctx, func(v *registry.View) ([]registry.Mutation, error) {
//		return []registry.Mutation{registry.PutNode(node)}, nil
//	})
//
// Every node tails the topic. Writers are serialised through one Kafka
// transactional id: Update fences any other writer, reads the registry to its
// end, validates against that view and commits, so two control calls on two
// nodes can never both add overlapping partitions.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/retry"
	"github.com/sluicedb/sluice/kafkaread"
	"github.com/sluicedb/sluice/kafkatxn"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/wal"
)

// Partition is one partition's desired state.
type Partition struct {
	ID    uint32         `json:"id"`
	Range keyspace.Range `json:"range"`
	Owner string         `json:"owner"`
	// Epoch grows every time the partition changes owner.
	Epoch uint64 `json:"epoch"`
	// Standbys are nodes that tail the partition's changelog into their own
	// store and serve SESSION and EVENTUAL reads.
	Standbys []string `json:"standbys,omitempty"`
	// Pinned partitions are never moved by automatic placement (neither
	// failover nor rebalancing: rebalance.go); only an operator moves them.
	Pinned bool `json:"pinned,omitempty"`
	// Placed says why Owner owns it: the last placement decision
	// (PlacedAdded, PlacedByOperator, or automatic placement's cause).
	Placed string `json:"placed,omitempty"`
	// Moving is a rebalance under way (rebalance.go), or nil.
	Moving *Moving `json:"moving,omitempty"`
}

// Equal reports whether p and o are the same entry.
func (p Partition) Equal(o Partition) bool {
	return p.ID == o.ID && p.Range == o.Range && p.Owner == o.Owner && p.Epoch == o.Epoch && slices.Equal(p.Standbys, o.Standbys)
}

// HasStandby reports whether node keeps a standby of p.
func (p Partition) HasStandby(node string) bool { return slices.Contains(p.Standbys, node) }

// Node is a node's announcement.
type Node struct {
	ID          string `json:"id"`
	DataAddr    string `json:"data_addr"`
	ControlAddr string `json:"control_addr"`
	// WAL is the node's write-ahead log (--wal: kafka, disk or none), and
	// Bucket whether it has a snapshot bucket (--snapshot-url): what its
	// partitions' data can follow their slots through (modes.go). A record
	// from before nodes announced them has neither, and reads as kafka.
	WAL    string `json:"wal,omitempty"`
	Bucket bool   `json:"bucket,omitempty"`
}

// View is the registry at one offset. Never modified once published.
type View struct {
	Partitions map[uint32]Partition
	Nodes      map[string]Node
	// Writers are the changelog producers, by transactional id, that were
	// ever given a slot range, with those ranges (writers.go): kept after
	// their partitions are removed, so a new owner can fence them.
	Writers map[string]Writer
	// Incarnations are the latest incarnation of every node id that
	// recorded one (incarnation.go).
	Incarnations map[string]Incarnation
	// MaxEpoch is the highest epoch ever given, also to partitions since
	// removed: a new epoch is always above it, so a restore can tell an older
	// owner's records (of any partition over the same slots) from a newer one's.
	MaxEpoch uint64
	// MaxID is the highest partition id ever given (placement.go), also to
	// partitions since removed: a new id is always above it.
	MaxID uint32
	// Paused is whether an operator paused automatic placement (sluice
	// cluster auto off): no failover and no rebalance is decided.
	Paused bool
	// Next is the next registry offset the view has not seen.
	Next int64
}

// Overlapping returns the partition, other than skip, with the lowest slots
// among those whose range overlaps r (the same one every time: an error
// naming it is stable).
func (v *View) Overlapping(r keyspace.Range, skip uint32) (Partition, bool) {
	var found Partition
	ok := false
	for _, p := range v.Partitions {
		if p.ID != skip && p.Range.Overlaps(r) && (!ok || p.Range.From < found.Range.From) {
			found, ok = p, true
		}
	}
	return found, ok
}

// Mutation is one registry record to write: a value, or a removal.
type Mutation struct {
	Key   string
	Value []byte // nil removes
}

const (
	partitionPrefix = "partition/"
	nodePrefix      = "node/"
	maxEpochKey     = "max-epoch"
	// placementKey holds "paused" while automatic placement is paused.
	placementKey = "placement"
)

// NextEpoch returns the mutation that records epoch as given, and the epoch: one
// above every epoch given before.
func (v *View) NextEpoch() (uint64, Mutation) {
	e := v.MaxEpoch + 1
	return e, Mutation{Key: maxEpochKey, Value: []byte(strconv.FormatUint(e, 10))}
}

// PutPartition writes p.
func PutPartition(p Partition) Mutation {
	b, _ := json.Marshal(p)
	return Mutation{Key: partitionPrefix + strconv.FormatUint(uint64(p.ID), 10), Value: b}
}

// DeletePartition removes partition id.
func DeletePartition(id uint32) Mutation {
	return Mutation{Key: partitionPrefix + strconv.FormatUint(uint64(id), 10)}
}

// PutNode announces n.
func PutNode(n Node) Mutation {
	b, _ := json.Marshal(n)
	return Mutation{Key: nodePrefix + n.ID, Value: b}
}

// Config says where the registry lives.
type Config struct {
	Client []kgo.Opt
	Topic  string
	// Key is the cluster key every record is sealed under (seal.go): a
	// record that fails the seal is skipped and logged. Every node of a
	// cluster needs the same one (DeriveKey makes one of a shared secret).
	// Required: at least 16 bytes.
	Key []byte
	// AdoptUnsealed folds records that are not sealed as long as no sealed
	// one came before them: a registry written by a sluice before sealing,
	// for one start at the upgrade (View.Reseal then seals it). Default: an
	// unsealed record is always skipped.
	AdoptUnsealed bool
	// Log hears of records skipped because they are not sealed or do not
	// decode, and of failed reads of the topic (retried). Default: nothing.
	Log zerolog.Logger
}

// Registry tails the registry topic and writes to it.
type Registry struct {
	cfg     Config
	seal    sealer
	cl      *kgo.Client
	mu      sync.Mutex
	view    *View
	changed chan struct{}
	errs    int // records that were not sealed or did not decode, skipped
	// gens is the generation of the last record folded under each key
	// (seal.go): an older one is a replay.
	gens map[string]int64
	// sealed: a sealed record was folded; adopted: unsealed ones folded
	// before it (Config.AdoptUnsealed); skipped: unsealed ones skipped.
	sealed           bool
	adopted, skipped int
	stop             context.CancelFunc
	done             chan struct{}
}

// Open starts tailing the registry and returns once the view has caught up
// with the topic's end.
func Open(ctx context.Context, cfg Config) (*Registry, error) {
	if len(cfg.Key) < 16 {
		return nil, fmt.Errorf("registry: a cluster key of at least 16 bytes is required to seal %s's records (got %d)", cfg.Topic, len(cfg.Key))
	}
	cl, err := kgo.NewClient(cfg.Client...)
	if err != nil {
		return nil, err
	}
	tailCtx, cancel := context.WithCancel(context.Background())
	r := &Registry{
		cfg: cfg, seal: sealer{key: cfg.Key, topic: cfg.Topic}, gens: map[string]int64{}, cl: cl, stop: cancel, done: make(chan struct{}), changed: make(chan struct{}),
		view: &View{Partitions: map[uint32]Partition{}, Nodes: map[string]Node{}, Writers: map[string]Writer{}, Incarnations: map[string]Incarnation{}},
	}
	go r.tail(tailCtx)
	if err := r.CatchUp(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// tail folds the registry's committed records into the view until ctx ends.
// It reads with kafkaread.Tail, whose position moves past markers and aborted
// transactions, with or without a marker: the embedded broker (kfake) aborts
// a transaction in flight at a crash without one, and franz-go's consumer
// then never reached the end (Open hung) and dropped the writer's later
// commits.
func (r *Registry) tail(ctx context.Context) {
	defer close(r.done)
	_, _ = retry.Forever(ctx, func() (struct{}, error) {
		err := kafkaread.Tail(ctx, r.cfg.Client, r.cfg.Topic, map[int32]int64{0: r.View().Next}, r.fold)
		var gone *kafkaread.OffsetGoneError
		if errors.As(err, &gone) {
			// The log starts later (deleted, or compacted by kfake, which
			// moves the start): the registry is its surviving records.
			r.mu.Lock()
			r.view = &View{Partitions: maps.Clone(r.view.Partitions), Nodes: maps.Clone(r.view.Nodes), Writers: maps.Clone(r.view.Writers), Incarnations: maps.Clone(r.view.Incarnations), Next: gone.LogStart, MaxEpoch: r.view.MaxEpoch, MaxID: r.view.MaxID, Paused: r.view.Paused}
			r.mu.Unlock()
		}
		return struct{}{}, err
	}, func(err error, wait time.Duration) {
		r.cfg.Log.Warn().Err(err).Dur("retry_in", wait).Str("topic", r.cfg.Topic).Msg("registry: reading the topic failed")
	})
}

// fold applies a step of the topic to a new view.
func (r *Registry) fold(b kafkaread.Step) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := &View{Partitions: maps.Clone(r.view.Partitions), Nodes: maps.Clone(r.view.Nodes), Writers: maps.Clone(r.view.Writers), Incarnations: maps.Clone(r.view.Incarnations), Next: r.view.Next, MaxEpoch: r.view.MaxEpoch, MaxID: r.view.MaxID, Paused: r.view.Paused}
	for _, rec := range b.Records {
		if !r.admit(rec) {
			continue
		}
		if err := apply(v, rec); err != nil {
			r.errs++
			r.cfg.Log.Warn().Err(err).Str("key", string(rec.Key)).Int64("offset", rec.Offset).Msg("registry: skipping a record that does not decode")
		}
	}
	if next, ok := b.Reached[0]; ok {
		v.Next = next
	}
	r.view = v
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// apply folds one registry record into v.
func apply(v *View, rec *kgo.Record) error {
	key := string(rec.Key)
	switch {
	case strings.HasPrefix(key, partitionPrefix):
		id, err := strconv.ParseUint(key[len(partitionPrefix):], 10, 32)
		if err != nil {
			return err
		}
		if rec.Value == nil {
			delete(v.Partitions, uint32(id))
			return nil
		}
		var p Partition
		if err := json.Unmarshal(rec.Value, &p); err != nil {
			return err
		}
		if p.ID != uint32(id) {
			return fmt.Errorf("registry: %s holds partition %d", key, p.ID)
		}
		v.Partitions[p.ID] = p
		v.MaxEpoch = max(v.MaxEpoch, p.Epoch)
		v.MaxID = max(v.MaxID, p.ID)
	case strings.HasPrefix(key, nodePrefix):
		id := key[len(nodePrefix):]
		if rec.Value == nil {
			delete(v.Nodes, id)
			return nil
		}
		var n Node
		if err := json.Unmarshal(rec.Value, &n); err != nil {
			return err
		}
		if n.ID != id {
			return fmt.Errorf("registry: %s holds node %q", key, n.ID)
		}
		v.Nodes[id] = n
	case strings.HasPrefix(key, writerPrefix):
		return applyWriter(v, key, rec.Value)
	case key == maxIDKey:
		return applyMaxID(v, rec.Value)
	case strings.HasPrefix(key, incarnationPrefix):
		return applyIncarnation(v, key, rec.Value)
	case key == placementKey:
		v.Paused = string(rec.Value) == placementPaused
	case key == maxEpochKey:
		e, err := strconv.ParseUint(string(rec.Value), 10, 64)
		if err != nil {
			return err
		}
		v.MaxEpoch = max(v.MaxEpoch, e)
	default:
		return fmt.Errorf("registry: unknown key %q", key)
	}
	return nil
}

// Errs counts the records skipped: not sealed, replayed, or not decoding.
func (r *Registry) Errs() int { r.mu.Lock(); defer r.mu.Unlock(); return r.errs }

// View returns the current view.
func (r *Registry) View() *View {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view
}

// Changed returns a channel closed at the next change of the view.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// CatchUp waits until the view has seen everything committed to the registry
// when it was called: a fresh read, not the cached view.
func (r *Registry) CatchUp(ctx context.Context) error {
	end, err := r.end(ctx)
	if err != nil {
		return err
	}
	return r.waitFor(ctx, end)
}

// waitFor waits until the view has seen every offset before end.
func (r *Registry) waitFor(ctx context.Context, end int64) error {
	for {
		ch := r.Changed()
		if r.View().Next >= end {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return errors.New("registry: closed")
		}
	}
}

// end is the registry's committed end offset. A topic created a moment ago
// may not be known to every broker yet: that is retried until ctx ends.
func (r *Registry) end(ctx context.Context) (int64, error) {
	adm := kadm.NewClient(r.cl)
	for {
		ends, err := adm.ListCommittedOffsets(ctx, r.cfg.Topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			o, _ := ends.Lookup(r.cfg.Topic, 0)
			return o.Offset, nil
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, kerr.LeaderNotAvailable) && !errors.Is(err, kerr.NotLeaderForPartition) {
			return 0, fmt.Errorf("registry: end offset of %s: %w", r.cfg.Topic, err)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("registry: end offset of %s: %w", r.cfg.Topic, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Update applies fn's mutations atomically against the latest registry: it
// fences every other writer, catches up, calls fn with the caught-up view and
// commits what fn returns. When Update returns, View includes the change.
func (r *Registry) Update(ctx context.Context, fn func(v *View) ([]Mutation, error)) error {
	return r.UpdateFenced(ctx, nil, fn)
}

// UpdateFenced is Update whose transaction also commits offsets for a
// consumer group as one of its members (groupfence.go): a writer whose
// group generation has passed is refused (ErrStaleMember) and writes
// nothing. A nil fence is a plain Update.
func (r *Registry) UpdateFenced(ctx context.Context, fence *GroupFence, fn func(v *View) ([]Mutation, error)) error {
	return retry.Tries(ctx, 10, retry.ClientPolicy(), func(int) (bool, error) {
		err := r.update(ctx, fence, fn)
		// Another writer fenced this one mid-way, or franz-go aborted the
		// commit: nothing was written. Try again against the latest view.
		var fenced *fencedError
		return errors.As(err, &fenced) || errors.Is(err, wal.ErrNotCommitted), err
	})
}

// fencedError says an update lost the writer's transactional id to another
// writer before it committed; it wrote nothing.
type fencedError struct{ err error }

func (e *fencedError) Error() string { return "registry: another writer took over: " + e.err.Error() }
func (e *fencedError) Unwrap() error { return e.err }

func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.ConcurrentTransactions)
}

func (r *Registry) update(ctx context.Context, fence *GroupFence, fn func(v *View) ([]Mutation, error)) error {
	opts := append([]kgo.Opt{
		kgo.TransactionalID(r.cfg.Topic + ".writer"),
		kgo.DefaultProduceTopic(r.cfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(30 * time.Second),
	}, r.cfg.Client...)
	watch, watchOpt, err := kafkatxn.WatchCommits(r.cfg.Client)
	if err != nil {
		return err
	}
	w, err := kgo.NewClient(append(opts, watchOpt)...)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, _, err := w.ProducerID(ctx); err != nil {
		if isFenced(err) {
			return &fencedError{err}
		}
		return fmt.Errorf("registry: fencing other writers: %w", err)
	}
	if err := r.CatchUp(ctx); err != nil {
		return err
	}
	v := r.View()
	muts, err := fn(v)
	if err != nil || len(muts) == 0 {
		return err
	}
	watch.Reset()
	if err := w.BeginTransaction(); err != nil {
		return err
	}
	recs := make([]*kgo.Record, len(muts))
	for i, m := range muts {
		// Generation v.Next: above that of every update this one caught up
		// with, so none of theirs can be replayed over it.
		recs[i] = r.seal.seal(m, v.Next)
	}
	if err := w.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		_ = w.EndTransaction(ctx, kgo.TryAbort)
		if isFenced(err) {
			return &fencedError{err}
		}
		return fmt.Errorf("registry: write: %w", err)
	}
	if fence != nil {
		if err := fence.commit(ctx, w, r.cfg.Topic+".writer", r.cfg.Topic, v.Next); err != nil {
			_ = w.EndTransaction(ctx, kgo.TryAbort)
			if isFenced(err) {
				return &fencedError{err}
			}
			return err
		}
	}
	if err := w.EndTransaction(ctx, kgo.TryCommit); err != nil {
		if isFenced(err) {
			return &fencedError{err}
		}
		return fmt.Errorf("registry: commit: %w", err)
	}
	if watch.Aborted() {
		return fmt.Errorf("registry: commit: franz-go aborted the transaction instead (kafkatxn/commitwatch.go): %w", wal.ErrNotCommitted)
	}
	// The commit markers are written after EndTxn returns: wait until the
	// records themselves are visible, not just the end offset of the moment.
	return r.waitFor(ctx, recs[len(recs)-1].Offset+1)
}

// Close stops tailing.
func (r *Registry) Close() {
	r.stop()
	<-r.done
	r.cl.Close()
}
