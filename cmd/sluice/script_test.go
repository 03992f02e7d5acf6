package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluicedb/sluice/internal/kafkatest"
	"github.com/sluicedb/sluice/node"
)

// The binary's transcripts (testdata/script/*.txtar): each runs `sluice` as a
// user types it, against nodes it starts with `startnode`, and checks what it
// prints and its exit code.
func TestMain(m *testing.M) {
	testscript.Main(kafkaMain{m}, map[string]func(){"sluice": main})
}

// kafkaMain runs the tests as kafkatest.Main does (its broker stopped, the
// leak check), returning the code to testscript.
type kafkaMain struct{ m *testing.M }

func (k kafkaMain) Run() int { return kafkatest.Run(k.m) }

func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t, "testdata/script"))
}

func scriptParams(t *testing.T, dir string) testscript.Params {
	var clusters atomic.Int64
	base := kafkatest.ClusterName(t)
	return testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// startnode [-data-token TOKEN] [-control-rate N] [-embedded
			// ADDR]: a node on the test broker (or an embedded one on ADDR), its addresses in $ADDR, $CONTROL_ADDR and
			// $HTTP_ADDR, its control token in $WORK/control.token.
			"startnode": func(ts *testscript.TestScript, neg bool, args []string) {
				cfg := node.Config{Brokers: kafkatest.Brokers(t), Cluster: base + "-" + strconv.FormatInt(clusters.Add(1), 10),
					DataDir: ts.MkAbs("node"), DataAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", ControlToken: "control-secret",
					HTTPAddr: "127.0.0.1:0", Log: zerolog.Nop(), ControlRate: node.DefaultConfig().ControlRate}
				for i := 0; i+1 < len(args); i += 2 {
					switch args[i] {
					case "-data-token":
						cfg.DataToken = args[i+1]
					case "-embedded": // the embedded broker on this address, not the test broker
						cfg.Brokers, cfg.EmbeddedKafkaAddr = nil, args[i+1]
					case "-control-rate":
						r, err := strconv.ParseFloat(args[i+1], 64)
						ts.Check(err)
						cfg.ControlRate = r
					default:
						ts.Fatalf("startnode: unknown option %s", args[i])
					}
				}
				ts.Check(os.WriteFile(ts.MkAbs("control.token"), []byte(cfg.ControlToken+"\n"), 0o600))
				n, err := node.Start(context.Background(), cfg)
				ts.Check(err)
				ts.Defer(func() { n.Close() })
				// A partition serves once its lease is waited out: generous,
				// for loaded machines.
				deadline := time.Now().Add(2 * time.Minute)
				for !n.Ready() {
					if time.Now().After(deadline) {
						ts.Fatalf("startnode: the node did not serve within 2 minutes")
					}
					time.Sleep(20 * time.Millisecond)
				}
				ts.Setenv("ADDR", n.DataAddr())
				ts.Setenv("CONTROL_ADDR", n.ControlAddr())
				ts.Setenv("HTTP_ADDR", n.HTTPAddr())
			},
			// exits CODE PROG ARGS...: PROG exits with CODE (its output is
			// then checked as exec's).
			"exits": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 {
					ts.Fatalf("usage: exits CODE PROG [ARGS...]")
				}
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				got := 0
				if err := ts.Exec(args[1], args[2:]...); err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) {
						ts.Fatalf("%s: %v", args[1], err)
					}
					got = ee.ExitCode()
				}
				if got != want {
					ts.Fatalf("%s exited %d, want %d", args[1], got, want)
				}
			},
			// probe grpc ADDR | probe http URL: what an orchestrator's probe
			// sees, without any token: gRPC health's status, or the HTTP
			// status and body.
			"probe": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: probe grpc ADDR | probe http URL")
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				var out string
				var err error
				switch args[0] {
				case "grpc":
					// Health turns SERVING a moment after the node is ready:
					// ask until it does, or fails otherwise.
					var cc *grpc.ClientConn
					if cc, err = grpc.NewClient(args[1], grpc.WithTransportCredentials(insecure.NewCredentials())); err == nil {
						for {
							var r *healthpb.HealthCheckResponse
							if r, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
								out = r.Status.String()
							}
							if err != nil || r.Status == healthpb.HealthCheckResponse_SERVING || ctx.Err() != nil {
								break
							}
							time.Sleep(20 * time.Millisecond)
						}
						cc.Close()
					}
				case "http":
					var resp *http.Response
					if resp, err = http.Get(args[1]); err == nil {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						out = fmt.Sprintf("%d %s", resp.StatusCode, b)
					}
				default:
					ts.Fatalf("probe: grpc or http")
				}
				if err != nil {
					out = err.Error()
				}
				fmt.Fprintln(ts.Stdout(), out)
				if (err != nil) != neg {
					ts.Fatalf("probe %s %s: %s", args[0], args[1], out)
				}
			},
			// busyport: $BUSYPORT is a port something listens on, until the
			// script ends.
			"busyport": func(ts *testscript.TestScript, neg bool, args []string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				ts.Check(err)
				ts.Defer(func() { ln.Close() })
				_, port, _ := net.SplitHostPort(ln.Addr().String())
				ts.Setenv("BUSYPORT", port)
			},
			// deadport: $DEADPORT is a port nothing listens on.
			"deadport": func(ts *testscript.TestScript, neg bool, args []string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				ts.Check(err)
				_, port, _ := net.SplitHostPort(ln.Addr().String())
				ln.Close()
				ts.Setenv("DEADPORT", port)
			},
			// bigfile NAME BYTES: a file of BYTES bytes, every byte value.
			"bigfile": func(ts *testscript.TestScript, neg bool, args []string) {
				n, err := strconv.Atoi(args[1])
				ts.Check(err)
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(i * 7)
				}
				ts.Check(os.WriteFile(filepath.Join(ts.Getenv("WORK"), args[0]), b, 0o644))
			},
		},
	}
}
