package integration

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedb/sluice/internal/dockertest"
)

// kafkaCluster is a three-broker Apache Kafka cluster (KRaft, each broker
// also a controller) in containers of the local apache/kafka:4.1.1 image
// (scripts/docker-images.sh), on a Docker network of its own, the way
// deployments run: replication factor 3, min.insync.replicas=2. Each
// broker's client listener is published on a fixed port of the host's
// loopback (advertised as such), so a broker restarted keeps its address.
type kafkaCluster struct {
	t       *testing.T
	brokers []testcontainers.Container
	ports   []int
	network string // the brokers' Docker network: kafka1…kafka3 on it
}

// startKafkaCluster starts the three brokers and waits until all three
// answer in one cluster. It skips where no Docker engine can be had (see
// dockertest.Require).
func startKafkaCluster(t *testing.T) *kafkaCluster {
	t.Helper()
	dockertest.Require(t)
	// No reaper (its image cannot be pulled): Cleanup and, after a failed
	// run, scripts/docker-engine.sh stop remove the containers by label.
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// The machine has a /.dockerenv: without this testcontainers dials the
	// bridge's gateway.
	t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	labels := map[string]string{"dev.sluice.test": "true"}
	nw, err := tcnetwork.New(ctx, tcnetwork.WithLabels(labels))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Remove(context.Background()) })
	base := freePorts(t, 3)
	kc := &kafkaCluster{t: t, network: nw.Name}
	var voters []string
	for i := 1; i <= 3; i++ {
		voters = append(voters, fmt.Sprintf("%d@kafka%d:9093", i, i))
	}
	for i := 1; i <= 3; i++ {
		port := base + i - 1
		name := fmt.Sprintf("kafka%d", i)
		req := testcontainers.ContainerRequest{
			Image:          "apache/kafka:4.1.1",
			Labels:         labels,
			Networks:       []string{nw.Name},
			NetworkAliases: map[string][]string{nw.Name: {name}},
			ExposedPorts:   []string{"9092/tcp"},
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.PortBindings = network.PortMap{network.MustParsePort("9092/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: strconv.Itoa(port)}}}
			},
			Env: map[string]string{
				"KAFKA_NODE_ID":                                  strconv.Itoa(i),
				"KAFKA_PROCESS_ROLES":                            "broker,controller",
				"KAFKA_CONTROLLER_QUORUM_VOTERS":                 strings.Join(voters, ","),
				"KAFKA_LISTENERS":                                "INTERNAL://:19092,HOST://:9092,CONTROLLER://:9093",
				"KAFKA_ADVERTISED_LISTENERS":                     fmt.Sprintf("INTERNAL://%s:19092,HOST://127.0.0.1:%d", name, port),
				"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "INTERNAL:PLAINTEXT,HOST:PLAINTEXT,CONTROLLER:PLAINTEXT",
				"KAFKA_INTER_BROKER_LISTENER_NAME":               "INTERNAL",
				"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
				"KAFKA_DEFAULT_REPLICATION_FACTOR":               "3",
				"KAFKA_MIN_INSYNC_REPLICAS":                      "2",
				"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "3",
				"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
				"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "2",
				"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
				"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                "false",
				"KAFKA_ADD_PARTITIONS_TO_TXN_RETRY_BACKOFF_MS":   "1",
				"KAFKA_HEAP_OPTS":                                "-Xms128m -Xmx384m",
			},
		}
		// No wait strategy: a broker registers only once a quorum of
		// controllers runs, so the three start, then are waited for together.
		c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
		if c != nil {
			t.Cleanup(func() {
				if t.Failed() {
					kc.logTail(c, name)
				}
				c.Terminate(context.Background())
			})
		}
		if err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		kc.brokers = append(kc.brokers, c)
		kc.ports = append(kc.ports, port)
	}
	eventually(t, 3*time.Minute, func() error { return kc.allUp(ctx) })
	return kc
}

// Addrs is the bootstrap list of the three brokers.
func (kc *kafkaCluster) Addrs() string {
	var a []string
	for _, p := range kc.ports {
		a = append(a, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return strings.Join(a, ",")
}

// InternalAddrs is the bootstrap list of the three brokers for a container
// on the brokers' network.
func (kc *kafkaCluster) InternalAddrs() string {
	var a []string
	for i := range kc.ports {
		a = append(a, fmt.Sprintf("kafka%d:19092", i+1))
	}
	return strings.Join(a, ",")
}

// allUp: the cluster's metadata lists the three brokers.
func (kc *kafkaCluster) allUp(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kc.Addrs(), ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return err
	}
	if len(m.Brokers) != 3 {
		return fmt.Errorf("%d brokers of 3 registered", len(m.Brokers))
	}
	return nil
}

// kill stops broker i (0-based) with SIGKILL, as a machine lost.
func (kc *kafkaCluster) kill(i int) {
	kc.t.Helper()
	zero := time.Duration(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kc.brokers[i].Stop(ctx, &zero); err != nil {
		kc.t.Fatalf("killing broker %d: %v", i+1, err)
	}
}

// restart starts broker i again on its own disk and waits until the
// cluster lists it and every partition of the topics with this prefix
// has its three replicas in sync.
func (kc *kafkaCluster) restart(i int, prefix string) {
	kc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := kc.brokers[i].Start(ctx); err != nil {
		kc.t.Fatalf("restarting broker %d: %v", i+1, err)
	}
	eventually(kc.t, 3*time.Minute, func() error {
		if err := kc.allUp(ctx); err != nil {
			return err
		}
		return kc.inSync(ctx, prefix)
	})
}

// inSync: every partition of the topics named prefix* has three in-sync replicas.
func (kc *kafkaCluster) inSync(ctx context.Context, prefix string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kc.Addrs(), ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		return err
	}
	for _, topic := range td.Sorted() {
		if !strings.HasPrefix(topic.Topic, prefix) {
			continue
		}
		for _, p := range topic.Partitions.Sorted() {
			if len(p.ISR) != 3 {
				return fmt.Errorf("%s/%d: in sync %v", topic.Topic, p.Partition, p.ISR)
			}
		}
	}
	return nil
}

// leaders counts, per broker (0-based), the partitions of topic it leads.
func (kc *kafkaCluster) leaders(topic string) (map[int]int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(kc.Addrs(), ",")...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return nil, err
	}
	n := map[int]int{}
	for _, p := range td[topic].Partitions {
		n[int(p.Leader)-1]++
	}
	return n, nil
}

func (kc *kafkaCluster) logTail(c testcontainers.Container, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx)
	if err != nil {
		return
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 64<<20))
	s := string(b)
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	kc.t.Logf("%s's log (end):\n%s", name, s)
}
