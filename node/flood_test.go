//go:build linux

package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
)

// floodChildEnv makes TestConnectionFloodLeavesTheNodeServing the node's
// process: its value is the node's MaxConnections.
const floodChildEnv = "SLUICE_FLOOD_CHILD_MAX_CONNECTIONS"

// floodHeadroom is the descriptors the node's process may open beyond those
// it holds once it serves: the flood runs it out of them.
const floodHeadroom = 200

// Brief O, D2: a flood of idle connections to the data port (with the
// HTTP/2 preface) took every descriptor of an embedded-broker node; the
// broker's accept loop ended at "too many open files" and closed its
// listener, and the node served nothing ever after. The node runs in a
// process of its own with floodHeadroom descriptors to spare; this test
// opens 500 connections to its data port and 40 to its broker, closes
// them, and wants the broker listening and a write and a read served.
// Twice: with a small MaxConnections (the flood cannot take the
// descriptors), and with one above the descriptor limit (it takes them all:
// the broker's listener must survive that too).
func TestConnectionFloodLeavesTheNodeServing(t *testing.T) {
	if v := os.Getenv(floodChildEnv); v != "" {
		floodChild(t, v)
		return
	}
	for _, c := range []struct {
		name string
		max  int
	}{{"limited", 32}, {"out of descriptors", 100000}} {
		t.Run(c.name, func(t *testing.T) { flood(t, c.max) })
	}
}

func flood(t *testing.T, maxConns int) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestConnectionFloodLeavesTheNodeServing$")
	cmd.Env = append(os.Environ(), floodChildEnv+"="+strconv.Itoa(maxConns), "TMPDIR="+t.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("the node's process said:\n%s", tail(stderr.String(), 4000))
		}
	}()
	ready := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "READY" {
				ready <- f[1:]
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var dataAddr, brokerAddr string
	select {
	case a := <-ready:
		dataAddr, brokerAddr = a[0], a[1]
	case err := <-exited:
		t.Fatalf("the node's process exited before it served: %v", err)
	case <-time.After(120 * time.Second):
		t.Fatal("the node's process did not serve within 120s")
	}

	// The flood: held until the last is open, then closed.
	var conns []net.Conn
	preface := append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0, 0, 0, 4, 0, 0, 0, 0, 0)
	open := func(addr string, n int, hello []byte) {
		for range n {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				continue // the backlog is full: the flood is as large as it gets
			}
			_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Write(hello)
			conns = append(conns, c)
		}
	}
	open(dataAddr, 500, preface)
	time.Sleep(time.Second) // the node accepts what it will
	open(brokerAddr, 40, nil)
	time.Sleep(2 * time.Second)
	for _, c := range conns {
		c.Close()
	}
	t.Logf("flood of %d connections closed", len(conns))

	deadline := time.Now().Add(120 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", brokerAddr, 2*time.Second)
		if err == nil {
			c.Close()
			break
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("the embedded broker's listener is gone after the flood: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the embedded broker does not listen 120s after the flood: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn, err := grpc.NewClient(dataAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data := sluicev1.NewDataClient(conn)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := data.Upsert(ctx, upsert("after", "flood"))
		var got *sluicev1.GetResponse
		if err == nil {
			got, err = data.Get(ctx, &sluicev1.GetRequest{Key: []byte("after")})
		}
		cancel()
		if err == nil && bytes.Equal(got.GetValue(), []byte("flood")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node does not serve a write and a read 120s after the flood: %v %v", got, err)
		}
		select {
		case err := <-exited:
			t.Fatalf("the node's process exited after the flood: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// floodChild runs the node for flood: on an embedded broker, with
// maxConns, descriptors limited to floodHeadroom more than it holds once
// it serves. It prints READY and its data and broker addresses, and closes
// when stdin does.
func floodChild(t *testing.T, maxConns string) {
	m, err := strconv.Atoi(maxConns)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), Config{DataDir: t.TempDir(), Cluster: "embedded", Partitions: 1, Brokers: []string{},
		EmbeddedKafkaAddr: "127.0.0.1:0", DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", HTTPAddr: "-",
		ControlToken: "test-token", MaxConnections: m, Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for !n.Ready() {
		time.Sleep(20 * time.Millisecond)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	r.Cur = uint64(len(fds) + floodHeadroom)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "serving with %d descriptors open, limit %d\n", len(fds), r.Cur)
	fmt.Printf("READY %s %s\n", n.DataAddr(), n.Brokers()[0])
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
