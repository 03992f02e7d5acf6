package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluicedb/sluice/internal/dockertest"
	"github.com/sluicedb/sluice/internal/kafkatest"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// nodeCluster is three sluice nodes, each in a container of the image the
// compose test builds (dockertest.SluiceImage), on two Docker networks: the
// brokers' (kafkacluster_test.go), where they reach Kafka as kafka1…kafka3,
// and a clients' network of their own, on a fixed address each, which the
// test process reaches directly (the host routes to its bridge) and which
// the nodes advertise to clients and to each other. Disconnecting a node from
// one network cuts it off from the brokers or from its clients, for real.
type nodeCluster struct {
	t         *testing.T
	kc        *kafkaCluster
	name      string
	clients   string // the clients' network
	tokenFile string // the control token, on the host (for the CLI)
	nodes     map[string]*nodeContainer
}

// nodeContainer is one node's container and its address on the clients'
// network.
type nodeContainer struct {
	id string
	c  testcontainers.Container
	ip netip.Addr
}

func (n *nodeContainer) addr() string    { return netip.AddrPortFrom(n.ip, 7400).String() }
func (n *nodeContainer) control() string { return netip.AddrPortFrom(n.ip, 7401).String() }

// startNodeCluster starts n1, n2 and n3 (n1 first: it gives the new cluster
// its 4 partitions), each serving, on the brokers of kc.
func startNodeCluster(t *testing.T, kc *kafkaCluster) *nodeCluster {
	t.Helper()
	image := dockertest.SluiceImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nc := &nodeCluster{t: t, kc: kc, name: kafkatest.ClusterName(t), nodes: map[string]*nodeContainer{}}
	nc.tokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(nc.tokenFile, []byte(clusterToken), 0o600); err != nil {
		t.Fatal(err)
	}
	subnet := nc.clientNetwork(ctx)
	ip := subnet.Addr().Next() // .1 is the bridge's (the host's) address
	for _, id := range []string{"n1", "n2", "n3"} {
		ip = ip.Next()
		n := &nodeContainer{id: id, ip: ip}
		req := testcontainers.ContainerRequest{
			Image:          image,
			Labels:         map[string]string{"dev.sluice.test": "true"},
			Networks:       []string{kc.network},
			NetworkAliases: map[string][]string{kc.network: {id}},
			Files:          []testcontainers.ContainerFile{{Reader: strings.NewReader(clusterToken), ContainerFilePath: "/token", FileMode: 0o600}},
			Cmd: []string{"serve", "--brokers", kc.InternalAddrs(), "--cluster", nc.name, "--node-id", id,
				"--data-dir", "/data", "--control-token-file", "/token", "--control-rate", "50",
				"--replication-factor", "3", "--lease", nodeLease.String(), "--failover", "manual", "--log-format", "json", "--http-addr", "-",
				"--data-addr", "0.0.0.0:7400", "--advertise-addr", n.addr(),
				"--control-addr", "0.0.0.0:7401", "--advertise-control-addr", n.control()},
		}
		c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req})
		n.c = c
		if c != nil {
			t.Cleanup(func() {
				if t.Failed() {
					nc.keepLog(n)
				}
				c.Terminate(context.Background())
			})
		}
		if err != nil {
			t.Fatalf("creating node %s: %v", id, err)
		}
		nc.nodes[id] = n
		// Joined to the clients' network before it starts: it advertises
		// that address from its first registry record on.
		nc.docker("network", "connect", "--ip", ip.String(), nc.clients, c.GetContainerID())
		if err := c.Start(ctx); err != nil {
			t.Fatalf("starting node %s: %v", id, err)
		}
		nc.waitHealthy(n)
	}
	return nc
}

// clientNetwork makes the clients' network on a /24 of 10.0.0.0/8 no other
// network holds (nodes on it need fixed addresses, which Docker gives only on
// a network made with its own subnet) and returns that subnet.
func (nc *nodeCluster) clientNetwork(ctx context.Context) netip.Prefix {
	nc.t.Helper()
	var last error
	for try := 0; try < 20; try++ {
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + rand.IntN(100)), byte(rand.IntN(256)), 0}), 24)
		nw, err := tcnetwork.New(ctx, tcnetwork.WithLabels(map[string]string{"dev.sluice.test": "true"}),
			tcnetwork.WithIPAM(&network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: subnet}}}))
		if err != nil {
			last = err // most likely: the subnet overlaps another network's
			continue
		}
		nc.t.Cleanup(func() { nw.Remove(context.Background()) })
		nc.clients = nw.Name
		return subnet
	}
	nc.t.Fatalf("no clients' network could be made: %v", last)
	return netip.Prefix{}
}

// docker runs a docker command and fails the test if it fails.
func (nc *nodeCluster) docker(args ...string) {
	nc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := dockertest.Run(ctx, "", nil, "docker", args...); err != nil {
		nc.t.Fatalf("%v\n%s", err, out)
	}
}

// cutFromBrokers disconnects node id from the brokers' network (it keeps its
// clients); reconnectBrokers joins it again under its alias.
func (nc *nodeCluster) cutFromBrokers(id string) {
	nc.docker("network", "disconnect", nc.kc.network, nc.nodes[id].c.GetContainerID())
}

func (nc *nodeCluster) reconnectBrokers(id string) {
	nc.docker("network", "connect", "--alias", id, nc.kc.network, nc.nodes[id].c.GetContainerID())
}

// cutFromClients disconnects node id from the clients' network (it keeps the
// brokers); reconnectClients joins it again at its address.
func (nc *nodeCluster) cutFromClients(id string) {
	nc.docker("network", "disconnect", nc.clients, nc.nodes[id].c.GetContainerID())
}

func (nc *nodeCluster) reconnectClients(id string) {
	n := nc.nodes[id]
	nc.docker("network", "connect", "--ip", n.ip.String(), nc.clients, n.c.GetContainerID())
}

func (nc *nodeCluster) addrs() []string {
	return []string{nc.nodes["n1"].addr(), nc.nodes["n2"].addr(), nc.nodes["n3"].addr()}
}

func (nc *nodeCluster) control(id string) sluicev1.ControlClient {
	return controlClient(nc.t, nc.nodes[id].control(), clusterToken)
}

// waitHealthy waits until the node's gRPC health check says SERVING.
func (nc *nodeCluster) waitHealthy(n *nodeContainer) {
	nc.t.Helper()
	conn, err := grpc.NewClient(n.addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		nc.t.Fatal(err)
	}
	defer conn.Close()
	eventually(nc.t, 3*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return fmt.Errorf("node %s: %v", n.id, err)
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("node %s: %v", n.id, resp.Status)
		}
		return nil
	})
}

// keepLog, for a failed test, has the node's Go runtime print its
// goroutines (SIGQUIT, which ends it) and keeps its whole log, goroutines
// included, in a file that outlives the test.
func (nc *nodeCluster) keepLog(n *nodeContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := dockertest.Run(ctx, "", nil, "docker", "kill", "--signal", "QUIT", n.c.GetContainerID()); err == nil {
		time.Sleep(2 * time.Second)
	}
	out, err := dockertest.Run(ctx, "", nil, "docker", "logs", n.c.GetContainerID())
	if err != nil {
		nc.t.Log(err)
		return
	}
	f, err := os.CreateTemp("", fmt.Sprintf("sluice-%s-%s-*.log", nc.name, n.id))
	if err != nil {
		nc.t.Log(err)
		return
	}
	defer f.Close()
	f.WriteString(out)
	nc.t.Logf("node %s's log and goroutines: %s", n.id, f.Name())
}

// move is the operator's `sluice partitions move ID --to NODE`, sent to
// via's control port, then waits until the partitions serve on node.
func (nc *nodeCluster) move(via, node string, ids ...uint32) {
	nc.t.Helper()
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := dockertest.Run(ctx, "", nil, plainBin(nc.t), "partitions", "move", fmt.Sprint(id), "--to", node,
			"--control-addr", nc.nodes[via].control(), "--control-token-file", nc.tokenFile)
		cancel()
		if err != nil {
			nc.t.Fatalf("moving partition %d to %s: %v\n%s", id, node, err, out)
		}
	}
	nc.waitServing(node, ids...)
}

// waitServing waits until node says it serves every partition of ids.
func (nc *nodeCluster) waitServing(node string, ids ...uint32) {
	nc.t.Helper()
	eventually(nc.t, 3*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := nc.control(node).NodeStatus(ctx, &sluicev1.NodeStatusRequest{})
		if err != nil {
			return err
		}
		serving := map[uint32]bool{}
		for _, p := range st.Partitions {
			serving[p.Id] = p.State == "serving"
		}
		for _, id := range ids {
			if !serving[id] {
				return fmt.Errorf("partition %d not serving on %s yet: %v", id, node, st.Partitions)
			}
		}
		return nil
	})
}

// owned is the partitions node owns, by the registry as via sees it. A
// node joined again to the brokers a moment ago may not have read the
// registry to its end yet and refuses (Unavailable): it is asked again.
func (nc *nodeCluster) owned(via, node string) []uint32 {
	nc.t.Helper()
	dc := dataClient(nc.t, nc.nodes[via].addr())
	var ids []uint32
	eventually(nc.t, 2*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		routes, err := dc.GetRoutes(ctx, &sluicev1.GetRoutesRequest{})
		if err != nil {
			return err
		}
		ids = nil
		for _, r := range routes.Routes {
			if r.Node == node {
				ids = append(ids, r.Partition)
			}
		}
		return nil
	})
	return ids
}
