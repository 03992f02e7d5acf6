package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The embedded broker takes only authenticated clients (SCRAM-SHA-256), with
// ACLs on. Without them any local process could produce to the registry,
// write raw records into the changelog or fence a partition's transactional
// id. Two users, their passwords made at the first start and kept in
// DATA-DIR/kafka.credentials (mode 0600, like control.token), so that only
// someone who can read the data directory gets in:
//
//   - the node's own, a superuser;
//   - a collector's, allowed to write <cluster>.ingest and nothing else.
//     `sluice kafka-credentials` prints it as a kcat/librdkafka properties
//     file.
const (
	embeddedCredentialsFile = "kafka.credentials"
	// EmbeddedAddrFile, in the data directory, holds the address the
	// embedded broker listens on.
	EmbeddedAddrFile      = "kafka.addr"
	embeddedMechanism     = "SCRAM-SHA-256"
	embeddedNodeUser      = "sluice"
	embeddedCollectorUser = "collector"
)

// EmbeddedCredentials are the embedded broker's SASL users.
type EmbeddedCredentials struct {
	NodePassword      string
	CollectorPassword string
}

// String keeps the passwords out of logs and %v.
func (EmbeddedCredentials) String() string { return "EmbeddedCredentials{…}" }

// Collector is a kcat/librdkafka properties file (kcat -F FILE) with which a
// collector writes to the ingest topic of the embedded broker at addr.
func (c EmbeddedCredentials) Collector(addr string) string {
	return properties("a collector's credentials: write <cluster>.ingest, nothing else", addr, embeddedCollectorUser, c.CollectorPassword)
}

// Admin is Collector for the node's own user, a superuser of the broker
// (for an operator's tools; a collector needs no more than Collector).
func (c EmbeddedCredentials) Admin(addr string) string {
	return properties("the node's own credentials: a superuser, who can rewrite the registry and the changelog", addr, embeddedNodeUser, c.NodePassword)
}

func properties(what, addr, user, pass string) string {
	return fmt.Sprintf("# sluice embedded broker: %s\n"+
		"bootstrap.servers=%s\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanisms=%s\nsasl.username=%s\nsasl.password=%s\n",
		what, addr, embeddedMechanism, user, pass)
}

// CollectorOpts are franz-go options for a collector of the embedded broker.
func (c EmbeddedCredentials) CollectorOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SASL(scram.Auth{User: embeddedCollectorUser, Pass: c.CollectorPassword}.AsSha256Mechanism())}
}

// readEmbeddedCredentials reads the credentials a node keeps in dataDir.
func readEmbeddedCredentials(dataDir string) (EmbeddedCredentials, error) {
	path := filepath.Join(dataDir, embeddedCredentialsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return EmbeddedCredentials{}, err
	}
	var c EmbeddedCredentials
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch {
		case !ok:
		case k == "node.password":
			c.NodePassword = v
		case k == "collector.password":
			c.CollectorPassword = v
		}
	}
	if c.NodePassword == "" || c.CollectorPassword == "" {
		return EmbeddedCredentials{}, fmt.Errorf("node: %s lacks node.password or collector.password: remove it and restart the node to make new ones", path)
	}
	return c, nil
}

// EmbeddedCredentialsIn reads the embedded broker's credentials in
// dataDir, making them the first time (a node does at its start, and
// `sluice kafka-credentials` does too, so that a collector can be set up
// before the node first runs).
func EmbeddedCredentialsIn(dataDir string) (EmbeddedCredentials, error) {
	path := filepath.Join(dataDir, embeddedCredentialsFile)
	if _, err := os.Stat(path); err == nil {
		return readEmbeddedCredentials(dataDir)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return EmbeddedCredentials{}, err
	}
	secret := func() string {
		var raw [24]byte
		_, _ = rand.Read(raw[:]) // never fails (crypto/rand)
		return hex.EncodeToString(raw[:])
	}
	c := EmbeddedCredentials{NodePassword: secret(), CollectorPassword: secret()}
	body := fmt.Sprintf("# sluice: the embedded broker's SASL (%s) credentials; keep this file private.\n"+
		"# `sluice kafka-credentials` prints a collector's.\nnode.user=%s\nnode.password=%s\ncollector.user=%s\ncollector.password=%s\n",
		embeddedMechanism, embeddedNodeUser, c.NodePassword, embeddedCollectorUser, c.CollectorPassword)
	if err := os.WriteFile(path+".new", []byte(body), 0o600); err != nil {
		return c, err
	}
	return c, os.Rename(path+".new", path)
}

// embeddedListen is where the embedded broker listens: the host of
// --embedded-kafka-addr and its port. kfake itself always binds 127.0.0.1;
// the host is honoured through its listen function. An unspecified host
// (0.0.0.0, ::, empty) is refused: kfake tells clients the address it
// listens on, and no client can dial 0.0.0.0 from elsewhere.
func embeddedListen(addr string) (host string, port int, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("node: --embedded-kafka-addr %q is not HOST:PORT: %w", addr, err)
	}
	if port, err = strconv.Atoi(portStr); err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("node: --embedded-kafka-addr %q: port %q is not a port number", addr, portStr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "", 0, fmt.Errorf("node: --embedded-kafka-addr %q: the embedded broker tells its clients the address it listens on, "+
			"so it needs one address they can dial (127.0.0.1:%d, or this host's address on the network), not all of them", addr, port)
	}
	return host, port, nil
}

// embeddedOpts are the kfake options of the node's embedded broker.
func (n *Node) embeddedOpts(dir string, creds EmbeddedCredentials) ([]kfake.Opt, error) {
	host, port, err := embeddedListen(n.cfg.EmbeddedKafkaAddr)
	if err != nil {
		return nil, err
	}
	// `sluice kafka-credentials` prints the address the broker listens on,
	// whatever --embedded-kafka-addr the node was given.
	if err := os.WriteFile(filepath.Join(n.cfg.DataDir, EmbeddedAddrFile), []byte(net.JoinHostPort(host, strconv.Itoa(port))+"\n"), 0o644); err != nil {
		return nil, err
	}
	// kfake keeps its SASL users in sasl.json and, when it finds one, takes
	// them over the users it is given: the credentials file is the one
	// truth, so the copy goes before every start.
	if err := os.Remove(filepath.Join(dir, "sasl.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return []kfake.Opt{
		kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return nil, err
			}
			return n.limit(&brokerListener{Listener: ln, log: n.cfg.Log, closing: n.closing, lost: n.stopServing}), nil
		}),
		kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser(embeddedMechanism, embeddedNodeUser, creds.NodePassword),
		kfake.User(embeddedMechanism, embeddedCollectorUser, creds.CollectorPassword),
	}, nil
}

// readyEmbedded readies the embedded broker, if the node runs one, for its
// clients: the collector's grant, and SASL for librdkafka's.
func (n *Node) readyEmbedded(ctx context.Context) error {
	if n.embedded == nil {
		return nil
	}
	return errors.Join(n.grantCollector(ctx), n.advertiseHandshakeV0(ctx))
}

// grantCollector lets the collector user write the ingest topic (and so
// describe it), with the embedded broker. In --wal disk and none the grant
// stays but the topic does not exist (ingesttopic.go): a collector's
// produce fails with UNKNOWN_TOPIC_OR_PARTITION, which says what is wrong,
// rather than TOPIC_AUTHORIZATION_FAILED, which would not.
func (n *Node) grantCollector(ctx context.Context) error {
	cl, err := kgo.NewClient(n.kafkaOpts()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	acl := kadm.NewACLs().Allow("User:" + embeddedCollectorUser).AllowHosts().
		Topics(n.topics.Ingest()).ResourcePatternType(kadm.ACLPatternLiteral).Operations(kadm.OpWrite)
	results, err := adm.CreateACLs(ctx, acl)
	for _, r := range results {
		err = errors.Join(err, r.Err)
	}
	if err != nil {
		return fmt.Errorf("node: the embedded broker's collector grant: %w", err)
	}
	return nil
}

// librdkafka (kcat, and the clients built on it) uses SASL only with a
// broker whose ApiVersions lists SaslHandshake from version 0; kfake lists
// it from 1 (it serves only v1, which librdkafka then sends anyway), and
// kcat failed: "SASL Handshake not supported by broker (required by
// mechanism SCRAM-SHA-256)". So the node answers ApiVersions for kfake with
// kfake's own answer, SaslHandshake's range starting at 0 as Kafka's does.
// A request of a version above the one captured goes to kfake unchanged.
func (n *Node) advertiseHandshakeV0(ctx context.Context) error {
	cl, err := kgo.NewClient(n.kafkaOpts()...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ours, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("node: the embedded broker's API versions: %w", err)
	}
	if err := kerr.ErrorForCode(ours.ErrorCode); err != nil {
		return fmt.Errorf("node: the embedded broker's API versions: %w", err)
	}
	for i := range ours.ApiKeys {
		if ours.ApiKeys[i].ApiKey == int16(kmsg.SASLHandshake) {
			ours.ApiKeys[i].MinVersion = 0
		}
	}
	n.embedded.ControlKey(int16(kmsg.ApiVersions), func(req kmsg.Request) (kmsg.Response, error, bool) {
		n.embedded.KeepControl()
		if req.GetVersion() > ours.Version {
			return nil, nil, false
		}
		resp := *ours
		resp.ApiKeys = slices.Clone(ours.ApiKeys)
		resp.SetVersion(req.GetVersion())
		return &resp, nil, true
	})
	return nil
}
