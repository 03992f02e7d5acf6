package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startEmbedded starts a node on its own embedded broker.
func startEmbedded(t *testing.T, cfg Config) *testNode {
	t.Helper()
	cfg.Brokers = []string{}
	if cfg.EmbeddedKafkaAddr == "" {
		cfg.EmbeddedKafkaAddr = "127.0.0.1:0"
	}
	if cfg.Cluster == "" {
		cfg.Cluster = "embedded"
	}
	return startNode(t, cfg)
}

// produceTo writes one record to topic with opts and returns the broker's
// answer (RecordDeliveryTimeout bounds a client the broker will not serve).
func produceTo(t *testing.T, brokers []string, topic string, opts ...kgo.Opt) error {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RecordDeliveryTimeout(10 * time.Second),
		kgo.UnknownTopicRetries(0), kgo.RequestRetries(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("node/n1"), Value: []byte(`{"id":"n1"}`)}).FirstErr()
}

// Issue 22, item 10: the embedded broker takes only clients with the
// credentials kept in the data directory (mode 0600). An unauthenticated
// client cannot write the registry or the changelog; a collector's
// credentials write the ingest topic and nothing else.
func TestEmbeddedBrokerTakesOnlyItsCredentials(t *testing.T) {
	n := startEmbedded(t, Config{})
	for _, topic := range []string{n.topics.Registry(), n.topics.Changelog()} {
		// franz-go: "broker closed the connection immediately after a
		// request was issued, which often happens when SASL is required
		// but not provided: is SASL missing?"
		if err := produceTo(t, n.brokers, topic); err == nil || !strings.Contains(err.Error(), "SASL") {
			t.Fatalf("an unauthenticated client's write to %s of the embedded broker: %v, want refused for want of SASL", topic, err)
		}
	}
	fi, err := os.Stat(filepath.Join(n.cfg.DataDir, embeddedCredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", fi.Name(), fi.Mode().Perm())
	}
	creds, err := EmbeddedCredentialsIn(n.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := produceTo(t, n.brokers, n.topics.Ingest(), creds.CollectorOpts()...); err != nil {
		t.Fatalf("a collector's write to the ingest topic: %v", err)
	}
	for _, topic := range []string{n.topics.Registry(), n.topics.Changelog()} {
		if err := produceTo(t, n.brokers, topic, creds.CollectorOpts()...); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("a collector's write to %s: %v, want TOPIC_AUTHORIZATION_FAILED", topic, err)
		}
	}
	// Nor may a collector fence a partition's changelog producer.
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.brokers...), kgo.TransactionalID(n.topics.TransactionalID(1))}, creds.CollectorOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, _, err := cl.ProducerID(ctx); !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("a collector's InitProducerID for %s: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", n.topics.TransactionalID(1), err)
	}
}

// --embedded-kafka-addr's host is honoured (kfake alone binds 127.0.0.1),
// and an address for every interface is refused with a message saying why.
func TestEmbeddedKafkaAddrHost(t *testing.T) {
	n := startEmbedded(t, Config{EmbeddedKafkaAddr: "127.0.0.2:0"})
	if got := n.Brokers(); len(got) != 1 || !strings.HasPrefix(got[0], "127.0.0.2:") {
		t.Fatalf("the embedded broker listens on %v, want 127.0.0.2", got)
	}
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		cfg := Config{Brokers: []string{}, EmbeddedKafkaAddr: addr, DataDir: t.TempDir(), ControlToken: "t", DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", HTTPAddr: "-"}
		n, err := Start(context.Background(), cfg)
		if err == nil {
			n.Close()
			t.Fatalf("a node started its embedded broker on %s", addr)
		}
		if !strings.Contains(err.Error(), "needs one address they can dial") {
			t.Fatalf("embedded broker on %s: %v, want a message saying it needs one address", addr, err)
		}
	}
}
