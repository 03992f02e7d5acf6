package bench

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/topics"
)

// newWorkload returns the operation of cfg's workload and what closes it.
func newWorkload(cfg Config) (op, func(), error) {
	value := make([]byte, cfg.ValueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	if cfg.Workload == "ingest" {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(topics.Names{Cluster: cfg.Cluster}.Ingest()),
			kgo.ProducerLinger(2 * time.Millisecond)}, cfg.Kafka...)...)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, _ *rand.Rand, key func() []byte) error {
			return cl.ProduceSync(ctx, &kgo.Record{Key: key(), Value: value}).FirstErr()
		}, cl.Close, nil
	}
	if cfg.Workload == "ping" {
		conn, err := grpc.NewClient(cfg.Addrs[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, err
		}
		health := healthpb.NewHealthClient(conn)
		return func(ctx context.Context, _ *rand.Rand, _ func() []byte) error {
			_, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}, func() { conn.Close() }, nil
	}
	c, err := client.Dial(cfg.Addrs, cfg.Client...)
	if err != nil {
		return nil, nil, err
	}
	upsert := func(ctx context.Context, _ *rand.Rand, key func() []byte) error {
		_, err := c.Upsert(ctx, client.Entry{Key: key(), Value: value})
		return err
	}
	get := func(ctx context.Context, _ *rand.Rand, key func() []byte) error {
		_, _, err := c.Get(ctx, key())
		return err
	}
	mix := func(readPercent int) op {
		return func(ctx context.Context, rng *rand.Rand, key func() []byte) error {
			if rng.IntN(100) < readPercent {
				return get(ctx, rng, key)
			}
			return upsert(ctx, rng, key)
		}
	}
	ops := map[string]op{
		"upsert-batch": func(ctx context.Context, _ *rand.Rand, key func() []byte) error {
			batch := make([]client.Entry, cfg.Batch)
			for i := range batch {
				batch[i] = client.Entry{Key: key(), Value: value}
			}
			_, err := c.Upsert(ctx, batch...)
			return err
		},
		"upsert": upsert,
		"get":    get,
		"get-session": func(ctx context.Context, _ *rand.Rand, key func() []byte) error {
			_, _, err := c.GetSession(ctx, key(), nil)
			return err
		},
		"get-eventual": func(ctx context.Context, _ *rand.Rand, key func() []byte) error {
			_, _, err := c.GetEventual(ctx, key())
			return err
		},
		"get-many":          getMany(c, cfg, client.Linearizable),
		"get-many-eventual": getMany(c, cfg, client.Eventual),
		"scan": func(ctx context.Context, _ *rand.Rand, key func() []byte) error {
			n := 0
			_, err := c.ScanFunc(ctx, client.ScanOptions{Start: key(), Limit: cfg.Batch}, func(client.KeyValue) bool { n++; return true })
			return err
		},
		"mix-90-10": mix(90),
		"mix-50-50": mix(50),
	}
	return ops[cfg.Workload], func() { c.Close() }, nil
}

// getMany is one GetMany of cfg.Batch keys at level.
func getMany(c *client.Client, cfg Config, level client.Consistency) op {
	return func(ctx context.Context, _ *rand.Rand, key func() []byte) error {
		keys := make([][]byte, cfg.Batch)
		for i := range keys {
			keys[i] = key()
		}
		_, err := c.GetMany(ctx, keys, client.ReadOptions{Consistency: level})
		return err
	}
}
