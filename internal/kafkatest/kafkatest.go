// Package kafkatest gives tests a real Apache Kafka broker: the one named by
// KAFKA_BROKERS (the test command starts one), or else one this test binary
// starts itself from Kafka's jars and stops when its tests end.
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
//	func TestX(t *testing.T) {
//		brokers := kafkatest.Brokers(t)
//		cluster := kafkatest.ClusterName(t) // unique topic prefix per test
//	}
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/sluicedb/sluice/internal/kafkalocal"
)

var (
	once    sync.Once
	started *kafkalocal.Broker
	dir     string
	addrs   []string
	err     error
)

// Main runs the tests, checks that they leaked no goroutine (go.uber.org/goleak;
// not when benchmarks ran, whose node lives as long as the binary) and stops
// a broker the binary started.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main returning the exit code, for a TestMain that has more to do
// after it (testscript.RunMain removes its temporary directory).
func Run(m *testing.M) int {
	code := m.Run()
	if started != nil { // before the leak check: its process waiter is ours
		started.Stop()
		os.RemoveAll(dir)
	}
	if code == 0 && flag.Lookup("test.bench").Value.String() == "" {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// Brokers returns the seed brokers of a real Kafka, starting one if needed.
func Brokers(t testing.TB) []string {
	t.Helper()
	once.Do(func() {
		if env := os.Getenv("KAFKA_BROKERS"); env != "" {
			addrs = strings.Split(env, ",")
			return
		}
		var port int
		port, err = freePort()
		if err != nil {
			return
		}
		dir, err = os.MkdirTemp("", "kafkatest")
		if err != nil {
			return
		}
		started, err = kafkalocal.Start(context.Background(), kafkalocal.Config{Dir: dir, Port: port, ControllerPort: port + 1})
		if err == nil {
			addrs = []string{started.Addr}
		}
	})
	if err != nil {
		t.Fatalf("kafkatest: no Kafka broker (set KAFKA_BROKERS or install Java and Maven): %v", err)
	}
	return addrs
}

// ClusterName returns a cluster name (topic prefix) no other test uses. Its
// topics are deleted when the test ends: a broker holds files open for every
// partition, and a whole suite's clusters would otherwise run it out of file
// descriptors.
func ClusterName(t testing.TB) string {
	name := clusterName(t)
	t.Cleanup(func() { deleteTopics(t, name) })
	return name
}

// deleteTopics deletes the topics of cluster, as far as the broker lets it.
func deleteTopics(t testing.TB, cluster string) {
	if len(addrs) == 0 {
		return
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var mine []string
	for _, name := range topics.Names() {
		if strings.HasPrefix(name, cluster+".") {
			mine = append(mine, name)
		}
	}
	if len(mine) > 0 {
		_, _ = adm.DeleteTopics(ctx, mine...)
	}
}

func clusterName(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	// Kafka topic names allow only [a-zA-Z0-9._-]; subtest names may hold more.
	name := strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t-%s-%s", strings.ToLower(name), hex.EncodeToString(b[:]))
}

// freePort finds a port whose next port is free too (the controller's).
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("kafkatest: no free pair of ports")
}
