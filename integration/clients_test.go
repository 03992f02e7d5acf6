package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sluicedb/sluice/client"
	sluicev1 "github.com/sluicedb/sluice/proto/sluice/v1"
	"github.com/sluicedb/sluice/server"
)

// Client processes for the crash loop (issue 22.1): new processes all the
// time, the `sluice` CLI and a Go client, calling every RPC of both ports in
// a loop while the node is killed and restarted. They come at every moment
// of a restart, as the clients of a supervised node do; none of their calls
// may kill the node, or be answered by a recovered panic.

// rpcClientEnv makes the test binary the Go client (rpcClientMain) instead
// of running tests: a new process each time, without a build of its own.
const rpcClientEnv = "SLUICE_TEST_RPC_CLIENT"

// recoveredPanic is in the answer of a call whose handler panicked.
const recoveredPanic = "a panic, recovered"

// clientLoad runs client processes against p until stop.
type clientLoad struct {
	t      *testing.T
	p      *proc
	stop   chan struct{}
	halt   sync.Once
	wg     sync.WaitGroup
	runs   atomic.Int64
	mu     sync.Mutex
	panics []string // outputs of clients that saw a panic
}

func startClients(t *testing.T, p *proc) *clientLoad {
	l := &clientLoad{t: t, p: p, stop: make(chan struct{})}
	t.Cleanup(l.stopAll) // also when the test fails half-way
	cli := plainBin(t)   // the CLI without the race detector: many starts, little CPU
	token := p.controlTokenFile()
	key := func(n int) string { return fmt.Sprintf("cli-%d", n%50) }
	commands := []func(n int) []string{
		func(n int) []string { return []string{"put", key(n), fmt.Sprint(n)} },
		func(n int) []string { return []string{"get", key(n)} },
		func(n int) []string { return []string{"get", key(n), key(n + 1), key(n + 2)} }, // GetMany
		func(n int) []string { return []string{"get", "--consistency", "eventual", key(n)} },
		func(n int) []string { return []string{"scan", "cli-", "--limit", "20"} },
		func(n int) []string { return []string{"watch", "cli-"} },
		func(n int) []string { return []string{"rm", key(n + 3)} },
		func(n int) []string {
			return []string{"partitions", "ls", "--control-addr", p.control, "--control-token-file", token, "--timeout", "2s"}
		},
	}
	for w := range 2 { // two CLI loops, each cycling through the commands
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := w; !l.stopped(); n++ {
				args := commands[n%len(commands)](n)
				if args[0] != "partitions" {
					args = append(args, "--addr", p.addr, "--timeout", "2s")
				}
				l.run(exec.Command(cli, args...))
			}
		}()
	}
	l.wg.Add(1)
	go func() { // the Go client: every RPC through the client package and raw stubs
		defer l.wg.Done()
		for n := 0; !l.stopped(); n++ {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), rpcClientEnv+"=1", "SLUICE_RPC_ADDR="+p.addr, "SLUICE_RPC_CONTROL="+p.control,
				"SLUICE_RPC_TOKEN_FILE="+token, fmt.Sprintf("SLUICE_RPC_ID=%d", n))
			l.run(cmd)
		}
	}()
	return l
}

func (l *clientLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// run runs one client process (killed after 20 s at most: a client that
// hangs is not what this test looks for) and keeps its output if it saw a
// panic, its own or the node's.
func (l *clientLoad) run(cmd *exec.Cmd) {
	done := make(chan struct{})
	var out []byte
	go func() {
		defer close(done)
		out, _ = cmd.CombinedOutput()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
		<-done
	}
	l.runs.Add(1)
	if s := string(out); strings.Contains(s, "panic") {
		l.mu.Lock()
		l.panics = append(l.panics, fmt.Sprintf("%v: %s", cmd.Args[1:], s))
		l.mu.Unlock()
	}
}

// stopAll stops the clients and waits for them.
func (l *clientLoad) stopAll() {
	l.halt.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// close stops the clients and fails the test if one saw a panic.
func (l *clientLoad) close() {
	l.stopAll()
	l.t.Logf("%d client processes (the sluice CLI and a Go client) ran against the node", l.runs.Load())
	if len(l.panics) > 0 {
		l.t.Errorf("%d client processes saw a panic, e.g.:\n%s", len(l.panics), l.panics[0])
	}
}

// stormAtStart provokes the moment issue 22.1 was about: it freezes the
// starting node (SIGSTOP) as soon as its data port accepts connections,
// starts a dozen CLI processes (each asks GetRoutes first) whose connections
// queue up on it, and thaws it: their calls all come as the node begins to
// serve (the node that served before its routing table was loaded died of
// them). It returns a function that waits for the processes.
func (l *clientLoad) stormAtStart() (wait func(), err error) {
	p := l.p
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("the node exited before its data port opened: %v", p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the data port did not open in 90 s: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	cli := plainBin(l.t)
	var wg sync.WaitGroup
	for i := range 12 {
		args := []string{"get", fmt.Sprintf("storm-%d", i)}
		if i%2 == 1 {
			args = []string{"put", fmt.Sprintf("storm-%d", i), "v"}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(exec.Command(cli, append(args, "--addr", p.addr, "--timeout", "20s")...))
		}()
	}
	time.Sleep(time.Second) // they start and connect to the frozen node
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return nil, err
	}
	return wg.Wait, nil
}

// controlTokenFile is the file holding the node's control token.
func (p *proc) controlTokenFile() string {
	if i := slices.Index(p.args, "--control-token-file"); i >= 0 {
		return p.args[i+1]
	}
	return filepath.Join(p.args[slices.Index(p.args, "--data-dir")+1], "control.token")
}

// rpcClientMain is the Go client process: two rounds of every data and
// control RPC, each call with a short deadline. It prints the answers that
// come from a recovered panic and exits 3 if there was one; any other error
// (the node is down, starting, restoring) is expected.
func rpcClientMain() int {
	addr, id := os.Getenv("SLUICE_RPC_ADDR"), os.Getenv("SLUICE_RPC_ID")
	token, _ := os.ReadFile(os.Getenv("SLUICE_RPC_TOKEN_FILE"))
	c, err := client.Dial([]string{addr}, client.WithMaxAttempts(2))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer c.Close()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer conn.Close()
	ctl, err := grpc.NewClient(os.Getenv("SLUICE_RPC_CONTROL"), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(server.BearerToken(strings.TrimSpace(string(token)))))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer ctl.Close()
	dc, cc := sluicev1.NewDataClient(conn), sluicev1.NewControlClient(ctl)
	key := []byte("go-" + id)
	calls := map[string]func(ctx context.Context) error{
		"Upsert": func(ctx context.Context) error {
			_, err := c.Upsert(ctx, client.Entry{Key: key, Value: []byte(id)})
			return err
		},
		"Get":         func(ctx context.Context) error { _, _, err := c.Get(ctx, key); return err },
		"Get session": func(ctx context.Context) error { _, _, err := c.GetSession(ctx, key, c.Session()); return err },
		"Get eventual": func(ctx context.Context) error {
			_, err := dc.Get(ctx, &sluicev1.GetRequest{Key: key, Consistency: sluicev1.Consistency_EVENTUAL})
			return err
		},
		"GetMany": func(ctx context.Context) error {
			_, err := c.GetMany(ctx, [][]byte{key, []byte("cli-1"), []byte("go-0")}, client.ReadOptions{})
			return err
		},
		"Scan": func(ctx context.Context) error {
			_, _, err := c.ScanPage(ctx, client.ScanOptions{Prefix: []byte("go-"), Limit: 20})
			return err
		},
		"Increment": func(ctx context.Context) error { _, err := c.Increment(ctx, []byte("go-counter"), 1); return err },
		"Remove":    func(ctx context.Context) error { _, err := c.Remove(ctx, []byte("go-gone-"+id)); return err },
		"GetRoutes": func(ctx context.Context) error { _, err := dc.GetRoutes(ctx, &sluicev1.GetRoutesRequest{}); return err },
		"Watch": func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			s, err := dc.Watch(ctx, &sluicev1.WatchRequest{Prefix: []byte("go-")})
			if err != nil {
				return err
			}
			for {
				if _, err := s.Recv(); err != nil {
					return err
				}
			}
		},
		"ListPartitions": func(ctx context.Context) error {
			_, err := cc.ListPartitions(ctx, &sluicev1.ListPartitionsRequest{})
			return err
		},
		"NodeStatus": func(ctx context.Context) error {
			_, err := cc.NodeStatus(ctx, &sluicev1.NodeStatusRequest{})
			return err
		},
		"GetOperation": func(ctx context.Context) error {
			_, err := cc.GetOperation(ctx, &sluicev1.GetOperationRequest{Id: "no-such-operation"})
			return err
		},
	}
	bad := 0
	for range 2 {
		for name, call := range calls {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := call(ctx)
			cancel()
			if err != nil && strings.Contains(status.Convert(err).Message(), recoveredPanic) {
				fmt.Printf("%s: answered by a recovered panic: %v\n", name, err)
				bad++
			}
		}
	}
	if bad > 0 {
		return 3
	}
	return 0
}
