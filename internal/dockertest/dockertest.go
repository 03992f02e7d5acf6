// Package dockertest is what the Docker-based tests share: finding an engine
// (or saying why there is none), the images scripts/docker-images.sh builds,
// and running docker commands with their output in the failure.
//
// A test calls Require first. Without a Docker engine it skips, saying how to
// get one, unless SLUICE_DOCKER=1 (scripts/test.sh sets it after starting an
// engine), where a missing engine fails the test; SLUICE_DOCKER=off skips.
package dockertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLabel marks the containers and networks these tests make outside
// compose and testcontainers, so scripts/docker-engine.sh stop removes those
// a failed run left behind.
const TestLabel = "dev.sluice.test=true"

var (
	imagesOnce sync.Once
	imagesErr  error
)

// Require returns the repository's root once a Docker engine answers and
// the images are built (scripts/docker-images.sh, a no-op when they are).
func Require(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("SLUICE_DOCKER") == "off" {
		t.Skip("SLUICE_DOCKER=off: the suite runs without Docker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("no Docker engine answers (docker info: %v: %s); ./scripts/docker-engine.sh start starts one (scripts/test.sh does)",
			err, strings.TrimSpace(string(out)))
		if os.Getenv("SLUICE_DOCKER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	imagesOnce.Do(func() {
		cmd := exec.Command(filepath.Join(root, "scripts", "docker-images.sh"))
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			imagesErr = fmt.Errorf("scripts/docker-images.sh: %v\n%s", err, out)
		}
	})
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
	return root
}

// RepoRoot is the directory holding go.mod, found from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("dockertest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Run runs a command (name and args) in dir with env added to the
// process's, and returns its combined output.
func Run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), err
}
