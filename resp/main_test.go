package resp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/keyspace"
	"github.com/sluicedb/sluice/node"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// The RESP port is tested through whole nodes in this process, against real
// Kafka, with go-redis and with raw bytes where the exact answer matters.
func TestMain(m *testing.M) { kafkatest.Main(m) }

// startNode starts a node with a RESP port on a free port and waits, with a
// generous deadline, until it serves. cfg's zero fields take test values.
func startNode(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	if cfg.Brokers == nil {
		cfg.Brokers = kafkatest.Brokers(t)
	}
	if cfg.Cluster == "" {
		cfg.Cluster = kafkatest.ClusterName(t)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.DataAddr == "" {
		cfg.DataAddr = "127.0.0.1:0"
	}
	cfg.ControlAddr, cfg.ControlToken, cfg.HTTPAddr = "127.0.0.1:0", "test-token", "-"
	if cfg.RESPAddr == "" {
		cfg.RESPAddr = "127.0.0.1:0"
	}
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	waitFor(t, 60*time.Second, "the node serves", n.Ready)
	return n
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newClient is go-redis against n's RESP port (RESP3 unless opts say).
func newClient(t testing.TB, n *node.Node, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: n.RESPAddr(), ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxRetries: -1}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// grpcData is a plain gRPC client of n's data port, for comparing answers.
func grpcData(t *testing.T, n *node.Node, opts ...grpc.DialOption) sluicev1.DataClient {
	t.Helper()
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	cc, err := grpc.NewClient(n.DataAddr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return sluicev1.NewDataClient(cc)
}

func controlOf(t *testing.T, n *node.Node) sluicev1.ControlClient {
	t.Helper()
	cc, err := grpc.NewClient(n.ControlAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(server.BearerToken("test-token")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return sluicev1.NewControlClient(cc)
}

// keyIn is a key, starting with prefix, in partition id's slots.
func keyIn(t *testing.T, n *node.Node, id uint32, prefix string) string {
	t.Helper()
	p, ok := n.Registry().View().Partitions[id]
	if !ok {
		t.Fatalf("no partition %d", id)
	}
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if s := keyspace.Slot([]byte(k), n.Slots()); s >= p.Range.From && s < p.Range.To {
			return k
		}
	}
}

// raw is a connection that writes bytes and reads replies as they come.
type raw struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, r: bufio.NewReaderSize(c, 1<<20)}
}

// command encodes args as a RESP array of bulk strings.
func command(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

func (r *raw) send(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// do sends one command and returns its reply.
func (r *raw) do(args ...string) any {
	r.t.Helper()
	r.send(command(args...))
	return r.reply()
}

// reply reads one reply: a string for simple strings and bulk strings, an
// int64, nil, an error (respError) or a []any.
func (r *raw) reply() any {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	v, err := readReply(r.r)
	if err != nil {
		r.t.Fatal(err)
	}
	return v
}

type respError string

func (e respError) Error() string { return string(e) }

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(line, "\r\n") || len(line) < 3 {
		return nil, fmt.Errorf("bad reply line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return respError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '_':
		return nil, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := ioReadFull(r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*', '%':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		if line[0] == '%' {
			n *= 2
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown reply type %q", line)
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// redisErr is err's message if it is an error reply.
func redisErr(err error) string {
	var re redis.Error
	if errors.As(err, &re) {
		return re.Error()
	}
	if err == nil {
		return ""
	}
	return "not a reply: " + err.Error()
}
