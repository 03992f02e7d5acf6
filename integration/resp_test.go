package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicedb/sluice/internal/kafkatest"
)

// redisTool runs redis-cli or redis-benchmark (Debian's redis-tools,
// scripts/install.sh) against addr and returns its stdout and stderr; it
// fails the test unless the tool exits 0.
func redisTool(t *testing.T, tool, addr string, args ...string) (string, string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, append([]string{"-h", host, "-p", port}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout: %s\nstderr: %s", tool, args, err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// The real binary's --resp-addr, driven by redis-cli and redis-benchmark as
// a user would: SET, GET, DEL, INCR, and the benchmark's GET, SET and MGET
// (with and without pipelining) complete without an error, with the data
// token as redis-cli's and redis-benchmark's -a.
func TestRedisToolsAgainstTheRESPPort(t *testing.T) {
	for _, withToken := range []bool{false, true} {
		name := "open"
		if withToken {
			name = "data-token"
		}
		t.Run(name, func(t *testing.T) {
			dir, respAddr := t.TempDir(), freeAddr(t)
			extra := []string{"--resp-addr", respAddr}
			var auth []string
			if withToken {
				tokenFile := filepath.Join(dir, "data.token")
				if err := os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				extra = append(extra, "--data-token-file", tokenFile)
				auth = []string{"-a", "t0ken", "--no-auth-warning"}
			}
			p := newProc(t, kafkatest.ClusterName(t), filepath.Join(dir, "node"), extra...)
			p.start()
			cli := func(args ...string) string {
				t.Helper()
				out, _ := redisTool(t, "redis-cli", respAddr, append(append([]string{}, auth...), args...)...)
				return strings.TrimRight(out, "\n")
			}
			if withToken {
				if out, _ := redisTool(t, "redis-cli", respAddr, "GET", "greeting"); !strings.Contains(out, "NOAUTH") {
					t.Fatalf("redis-cli without -a: %q, want NOAUTH", out)
				}
			}
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"PING"}, "PONG"},
				{[]string{"SET", "greeting", "hello world"}, "OK"},
				{[]string{"GET", "greeting"}, "hello world"},
				{[]string{"INCR", "visits"}, "1"},
				{[]string{"INCR", "visits"}, "2"},
				{[]string{"INCRBY", "visits", "40"}, "42"},
				{[]string{"SET", "greeting", "again", "NX"}, ""}, // nil: not set
				{[]string{"MGET", "greeting", "visits", "nothing"}, "hello world\n42"},
				{[]string{"DEL", "greeting", "visits", "nothing"}, "2"},
				{[]string{"GET", "greeting"}, ""},
				{[]string{"EXISTS", "greeting", "visits"}, "0"},
				{[]string{"INCR", "visits", "extra"}, "ERR wrong number of arguments for 'incr' command"},
			} {
				if got := cli(c.args...); got != c.want {
					t.Fatalf("redis-cli %q: %q, want %q", c.args, got, c.want)
				}
			}
			// redis-cli --pipe: 10,000 commands, good and bad, sent at
			// once; every one is answered (then its own ECHO).
			var pipe bytes.Buffer
			for i := range 10000 {
				switch i % 5 {
				case 0:
					pipe.WriteString("*2\r\n$4\r\nNOPE\r\n$1\r\nx\r\n")
				case 1:
					pipe.WriteString("*3\r\n$6\r\nINCRBY\r\n$4\r\npipe\r\n$2\r\n+5\r\n")
				default:
					fmt.Fprintf(&pipe, "*3\r\n$3\r\nSET\r\n$%d\r\npipe:%d\r\n$1\r\nv\r\n", len(fmt.Sprint("pipe:", i)), i)
				}
			}
			host, port, _ := net.SplitHostPort(respAddr)
			pipeCmd := exec.Command("redis-cli", append(append([]string{"-h", host, "-p", port}, auth...), "--pipe")...)
			pipeCmd.Stdin = &pipe
			if out, err := pipeCmd.CombinedOutput(); !strings.Contains(string(out), "errors: 4000, replies: 10000") { // it exits 1 for the errors
				t.Fatalf("redis-cli --pipe of 10,000 commands, 4,000 of them bad: %v\n%s", err, out)
			}
			if got := cli("EXISTS", "pipe:2", "pipe:9999", "pipe:5"); got != "2" {
				t.Fatalf("the SETs of the pipe: %q", got)
			}
			if got := cli("SET", "key:__rand_int__", "seeded"); got != "OK" {
				t.Fatal(got)
			}
			// GET, SET and MGET of redis-benchmark 7's tests (it has no
			// MGET test of its own: -t mget names none, so MGET also runs
			// as a command of its own), then pipelined.
			for _, args := range [][]string{
				{"-t", "get,set,mget", "-n", "2000", "-q"},
				{"-n", "2000", "-q", "MGET", "key:__rand_int__", "greeting", "key:__rand_int__"},
				{"-t", "get,set", "-n", "2000", "-P", "16", "-q"},
			} {
				out, errs := redisTool(t, "redis-benchmark", respAddr, append(append([]string{}, auth[:min(len(auth), 2)]...), args...)...) // -a TOKEN
				out = strings.ReplaceAll(out, "\r", "\n")
				t.Logf("redis-benchmark %q:\n%s%s", args, finalLines(out), errs)
				if strings.Contains(out+errs, "Error") || strings.Contains(out+errs, "ERR") {
					t.Fatalf("redis-benchmark %q reported errors:\n%s\n%s", args, out, errs)
				}
				want := []string{"SET: ", "GET: "}
				if args[0] == "-n" {
					want = []string{"MGET key:__rand_int__ greeting key:__rand_int__: "}
				}
				for _, w := range want {
					if !strings.Contains(out, w) || !strings.Contains(out[strings.LastIndex(out, w):], "requests per second") {
						t.Fatalf("redis-benchmark %q: no result for %q:\n%s", args, w, out)
					}
				}
			}
			// The benchmark's writes are in sluice: its value (3 random
			// bytes) over the seed, read by sluice's own CLI.
			if out, errs, code := sluice(t, p.addr, append([]string{"get", "key:__rand_int__"}, tokenArgs(withToken, dir)...)...); code != 0 || len(out) != 4 || out == "seeded\n" {
				t.Fatalf("sluice get of the benchmark's key: %q %q exit %d", out, errs, code)
			}
		})
	}
}

func tokenArgs(withToken bool, dir string) []string {
	if !withToken {
		return nil
	}
	return []string{"--data-token-file", filepath.Join(dir, "data.token")}
}

// finalLines keeps a benchmark's result lines, not its progress.
func finalLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "requests per second") || strings.HasPrefix(l, "WARNING") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, "\n") + "\n"
}
