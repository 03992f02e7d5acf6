package compose

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/internal/dockertest"
)

// project is the compose project the test runs as: fixed, so the sluice
// image it builds keeps its layers from one run to the next (and is the one
// the integration package's node containers run: dockertest.SluiceImage).
const project = dockertest.ComposeProject

// The compose file's published ports, and the variables that move them.
var ports = []struct {
	env  string
	port int
}{
	{"SLUICE_DATA_PORT", 7400}, {"SLUICE_CONTROL_PORT", 7401}, {"SLUICE_HTTP_PORT", 7402}, {"KAFKA_PORT", 9092},
	{"SLUICE2_DATA_PORT", 7410}, {"SLUICE3_DATA_PORT", 7420},
}

// TestComposeUp runs the README's "Local development with Docker" block
// word for word from the repo's root, as a user would, with the sluice CLI
// on PATH: compose up, health, put/get through the published data port, a
// kcat produce to the published Kafka port read back with get, /metrics, and
// compose down -v; then the "Three nodes with Docker" block: the cluster
// profile's three nodes rebalance, one is killed and fails over. A line
// whose comment is "# → x" must print x; lines are retried until they do
// (the first waits for the node to serve), within a deadline. Only where a
// default port is taken on this host does it move the ports (the compose
// file's variables) and say so.
func TestComposeUp(t *testing.T) {
	root := dockertest.Require(t)
	readme := readFile(t, filepath.Join(root, "README.md"))
	composeFile := readFile(t, filepath.Join(root, "docker-compose.yml"))
	blocks := readmeBlocks(t, readme)
	if checkEveryComposeCommandRuns(t, blockCommands(blocks), readme, composeFile) {
		checkObserveProfile(t, root)
	}

	// The image first, under the lock the integration package's node
	// containers build it under: up --build then finds every layer built.
	dockertest.SluiceImage(t)

	bin := t.TempDir()
	if out, err := dockertest.Run(context.Background(), root, nil, "go", "build", "-o", filepath.Join(bin, "sluice"), "./cmd/sluice"); err != nil {
		t.Fatalf("building the CLI: %v\n%s", err, out)
	}
	env := []string{"COMPOSE_PROJECT_NAME=" + project, "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	replace := movePortsIfTaken(t, &env)

	down := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if t.Failed() {
			out, _ := dockertest.Run(ctx, root, env, "docker", "compose", "--profile", "cluster", "logs", "--no-color", "--tail", "200")
			t.Logf("docker compose logs:\n%s", out)
		}
		if out, err := dockertest.Run(ctx, root, env, "docker", "compose", "--profile", "cluster", "down", "-v", "--remove-orphans"); err != nil {
			t.Logf("cleanup: %v\n%s", err, out)
		}
	}
	down() // a failed run's leftovers
	t.Cleanup(down)

	for i, steps := range blocks {
		t.Logf("%s", sections[i])
		for _, s := range steps {
			cmd := replace.Replace(s.cmd)
			start := time.Now()
			switch {
			case strings.HasPrefix(cmd, "docker compose up"), strings.HasPrefix(cmd, "docker compose --profile cluster up"):
				// The first up builds the sluice image: minutes on a loaded 2-core machine.
				runOnce(t, root, env, cmd, 15*time.Minute)
			case strings.HasPrefix(cmd, "docker compose down"), strings.HasPrefix(cmd, "docker compose --profile cluster down"):
				runOnce(t, root, env, cmd, 3*time.Minute)
				assertNothingLeft(t, root, env)
			default:
				out := runUntil(t, root, env, cmd, s.want, 4*time.Minute)
				t.Logf("%s → %s", cmd, firstLines(out, 3))
			}
			t.Logf("%-70s %v", cmd, time.Since(start).Round(100*time.Millisecond))
		}
	}
}

// readmeBlocks returns the steps of every section's block.
func readmeBlocks(t *testing.T, readme string) [][]step {
	t.Helper()
	var blocks [][]step
	for _, section := range sections {
		steps := blockSteps(readme, section)
		if len(steps) == 0 {
			t.Fatalf("README.md has no sh block under %q", section)
		}
		blocks = append(blocks, steps)
	}
	return blocks
}

// TestEveryComposeCommandIsRun needs no Docker: every `docker compose`
// command of the README and of the compose file's comments must be a line of
// the README's block (which TestComposeUp runs word for word), or start the
// observe profile (TestComposeUp checks its configuration).
func TestEveryComposeCommandIsRun(t *testing.T) {
	root, err := dockertest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme := readFile(t, filepath.Join(root, "README.md"))
	checkEveryComposeCommandRuns(t, blockCommands(readmeBlocks(t, readme)), readme, readFile(t, filepath.Join(root, "docker-compose.yml")))
}

func blockCommands(blocks [][]step) []string {
	var block []string
	for _, steps := range blocks {
		for _, s := range steps {
			block = append(block, s.cmd)
		}
	}
	return block
}

// checkEveryComposeCommandRuns fails unless every `docker compose` command
// of the README and of the compose file's comments is a line of the block,
// or starts the observe profile, whose images (Prometheus, Grafana) cannot
// be built here. It returns whether one starts that profile.
func checkEveryComposeCommandRuns(t *testing.T, block []string, readme, composeFile string) (observe bool) {
	t.Helper()
	for _, c := range commentCommands(composeFile) {
		if !slices.Contains(block, c) {
			t.Errorf("docker-compose.yml's comment names %q, which the README's block does not run", c)
		}
	}
	for _, c := range append(composeCommands(readme), composeCommands(composeFile)...) {
		switch {
		case slices.Contains(block, c):
		case strings.HasPrefix(c, "docker compose --profile observe up"):
			observe = true
		default:
			t.Errorf("%q (README or docker-compose.yml) is not a line of the README's blocks %q, so no test runs it", c, sections)
		}
	}
	return observe
}

// checkObserveProfile checks the observe profile's configuration and the
// files it mounts: its images cannot be built here.
func checkObserveProfile(t *testing.T, root string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := dockertest.Run(ctx, root, []string{"COMPOSE_PROJECT_NAME=" + project}, "docker", "compose", "--profile", "observe", "config")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"prometheus:", "grafana:", "examples/prometheus/prometheus.yml", "examples/grafana/provisioning", "examples/grafana/dashboards"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker compose --profile observe config has no %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"examples/prometheus/prometheus.yml", "examples/grafana/dashboards/sluice.json"} {
		readFile(t, filepath.Join(root, f))
	}
	if prom := readFile(t, filepath.Join(root, "examples/prometheus/prometheus.yml")); !strings.Contains(prom, "sluice:7402") {
		t.Errorf("examples/prometheus/prometheus.yml does not scrape the compose node (sluice:7402):\n%s", prom)
	}
}

// movePortsIfTaken leaves the compose file's ports alone where they are free
// (CI), and otherwise sets the variables that move them, returning the
// replacer that moves the block's addresses the same way.
func movePortsIfTaken(t *testing.T, env *[]string) *strings.Replacer {
	t.Helper()
	var pairs []string
	for _, p := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p.port))
		if err == nil {
			ln.Close()
			continue
		}
		free, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		moved := free.Addr().(*net.TCPAddr).Port
		free.Close()
		t.Logf("port %d is taken on this host: %s=%d, and the block's localhost:%d becomes localhost:%d", p.port, p.env, moved, p.port, moved)
		*env = append(*env, fmt.Sprintf("%s=%d", p.env, moved))
		pairs = append(pairs, fmt.Sprintf("localhost:%d", p.port), fmt.Sprintf("localhost:%d", moved))
	}
	return strings.NewReplacer(pairs...)
}

func runOnce(t *testing.T, dir string, env []string, cmd string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if _, err := dockertest.Run(ctx, dir, env, "bash", "-c", "set -o pipefail; "+cmd); err != nil {
		t.Fatal(err)
	}
}

// runUntil runs cmd until it succeeds and prints want, for at most limit.
func runUntil(t *testing.T, dir string, env []string, cmd, want string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := dockertest.Run(ctx, dir, env, "bash", "-c", "set -o pipefail; "+cmd)
		cancel()
		if err == nil && strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("exit 0 but the output has no %q:\n%s", want, out)
			}
			t.Fatalf("%s: still failing after %v: %v", cmd, limit, err)
		}
		time.Sleep(time.Second)
	}
}

// assertNothingLeft checks that down -v removed the project's containers
// and volumes.
func assertNothingLeft(t *testing.T, dir string, env []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	filter := "label=com.docker.compose.project=" + project
	for _, args := range [][]string{{"ps", "-aq", "--filter", filter}, {"volume", "ls", "-q", "--filter", filter}} {
		out, err := dockertest.Run(ctx, dir, env, "docker", args...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != "" {
			t.Errorf("after docker compose down -v, docker %s still lists:\n%s", strings.Join(args, " "), out)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, " | ")
}
