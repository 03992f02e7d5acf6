package dockertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ComposeProject is the compose project the compose test runs as, and the
// one SluiceImage builds under: fixed, so the sluice image keeps its layers
// from one run to the next and from one test package to the other.
const ComposeProject = "sluicetest"

var (
	sluiceOnce  sync.Once
	sluiceImage string
	sluiceErr   error
)

// SluiceImage builds the sluice image from the repo's Dockerfile exactly as
// the compose test does (`docker compose build sluice` in the compose
// test's project, so both share one image and its layer cache) and returns
// its name. Once per test binary; the test packages that call it at the same
// time build one after the other (a lock file), so the second finds every
// layer built. Call Require first.
func SluiceImage(t testing.TB) string {
	t.Helper()
	sluiceOnce.Do(func() { sluiceImage, sluiceErr = buildSluiceImage() })
	if sluiceErr != nil {
		t.Fatal(sluiceErr)
	}
	return sluiceImage
}

func buildSluiceImage() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "sluice-image-build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking the sluice image build: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	// A loaded 2-core machine takes minutes to build it from nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	env := []string{"COMPOSE_PROJECT_NAME=" + ComposeProject}
	if out, err := Run(ctx, root, env, "docker", "compose", "build", "sluice"); err != nil {
		return "", fmt.Errorf("building the sluice image: %w\n%s", err, out)
	}
	// Compose v1 (Debian's) names it project_service, v2 project-service.
	for _, name := range []string{ComposeProject + "_sluice", ComposeProject + "-sluice"} {
		if _, err := Run(ctx, root, nil, "docker", "image", "inspect", name); err == nil {
			return name, nil
		}
	}
	return "", fmt.Errorf("docker compose build sluice made no image named %s_sluice or %s-sluice", ComposeProject, ComposeProject)
}
