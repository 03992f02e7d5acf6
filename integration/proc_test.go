package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluicedb/sluice/internal/kafkatest"
)

// sluiceBin is `sluice` built with the race detector, for every test.
var sluiceBin string

// binDir holds the binaries the tests run.
var binDir string

func TestMain(m *testing.M) {
	if os.Getenv(rpcClientEnv) != "" { // a client process of the crash loop
		os.Exit(rpcClientMain())
	}
	dir, err := os.MkdirTemp("", "sluice-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	sluiceBin = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-race", "-o", sluiceBin, "../cmd/sluice")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sluice:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	kafkatest.Main(m)
}

var plain struct {
	once sync.Once
	bin  string
	err  error
}

// plainBin is `sluice` built without the race detector, whose shadow memory
// would swamp a test that measures the node's memory. Built once.
func plainBin(t *testing.T) string {
	t.Helper()
	plain.once.Do(func() {
		plain.bin = filepath.Join(binDir, "sluice-plain")
		if out, err := exec.Command("go", "build", "-o", plain.bin, "../cmd/sluice").CombinedOutput(); err != nil {
			plain.err = fmt.Errorf("building sluice without -race: %v\n%s", err, out)
		}
	})
	if plain.err != nil {
		t.Fatal(plain.err)
	}
	return plain.bin
}

// proc is a `sluice serve` child process: a real process, killed for real.
type proc struct {
	t       *testing.T
	args    []string
	addr    string
	control string // control-plane address
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	bin     string // the binary to run; default sluiceBin (built with -race)
	started time.Time
}

// newProc prepares a node of cluster on dataDir, against the test broker.
func newProc(t *testing.T, cluster, dataDir string, extra ...string) *proc {
	return newProcArgs(t, dataDir, append([]string{"--brokers", strings.Join(kafkatest.Brokers(t), ","), "--cluster", cluster}, extra...)...)
}

// newProcArgs prepares `sluice serve` on dataDir with the given extra flags.
func newProcArgs(t *testing.T, dataDir string, extra ...string) *proc {
	addr, control := freeAddr(t), freeAddr(t)
	args := append([]string{"serve", "--data-dir", dataDir, "--data-addr", addr, "--control-addr", control, "--log-format", "json"}, extra...)
	if !slices.Contains(extra, "--http-addr") {
		args = append(args, "--http-addr", "-")
	}
	p := &proc{t: t, args: args, addr: addr, control: control, logPath: filepath.Join(t.TempDir(), "node.log")}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("node log (tail):\n%s", b)
		}
	})
	return p
}

// start runs the process and waits until its health check says SERVING.
func (p *proc) start() {
	p.t.Helper()
	p.startNoWait()
	p.waitServing()
}

// startNoWait runs the process.
func (p *proc) startNoWait() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	bin := sluiceBin
	if p.bin != "" {
		bin = p.bin
	}
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.started = time.Now()
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); logf.Close(); close(p.exited) }()
}

// waitServing waits until the health check says SERVING.
func (p *proc) waitServing() {
	p.t.Helper()
	if err := p.waitServingWithin(90 * time.Second); err != nil {
		p.t.Fatal(err)
	}
}

// waitServingWithin waits until the health check says SERVING, and says why
// not if the process exits or limit passes first.
func (p *proc) waitServingWithin(limit time.Duration) error {
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("sluice exited before serving: %v", p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sluice not serving after %v: %v %v", limit, resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killAlive kills the process and says if it had died on its own first
// (a panic, a fatal error): a node only ever dies of the test's SIGKILL.
func (p *proc) killAlive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("the node died by itself (%v); its log says why", p.cmd.ProcessState)
	default:
	}
	p.kill()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && !(ws.Signaled() && ws.Signal() == syscall.SIGKILL) {
		return fmt.Errorf("the node exited by itself (%v) as it was killed", p.cmd.ProcessState)
	}
	return nil
}

// signal sends sig (SIGSTOP, SIGCONT) to the process.
func (p *proc) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// kill sends SIGKILL: no shutdown code runs.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once it runs
	<-p.exited
}

// rssAnon is a process's anonymous resident memory (its heap, stacks and
// Badger's memtables): VmRSS also counts the pages of Badger's tables and
// value log that the process maps in, which the kernel may drop at any time.
func rssAnon(t *testing.T, pid int) int64 { return procStatus(t, pid, "RssAnon") }

// vmRSS is a process's whole resident memory.
func vmRSS(t *testing.T, pid int) int64 { return procStatus(t, pid, "VmRSS") }

// procStatus reads a size in bytes from /proc/<pid>/status.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == field+":" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
