package integration

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A second `sluice serve` on a data directory in use fails at once with a
// message naming the directory; the first goes on serving.
func TestSecondServeOnADataDirFails(t *testing.T) {
	dir := t.TempDir()
	p := newProcArgs(t, dir, "--embedded-kafka-addr", freeAddr(t))
	p.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, "serve", "--data-dir", dir, "--data-addr", freeAddr(t), "--control-addr", freeAddr(t),
		"--http-addr", "-", "--embedded-kafka-addr", freeAddr(t))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil || err == nil || !strings.Contains(out.String(), dir) || !strings.Contains(out.String(), "locked") {
		t.Fatalf("second sluice serve on %s: %v (deadline: %v)\n%s", dir, err, ctx.Err(), out.String())
	}
	t.Logf("second serve: %s", strings.TrimSpace(out.String()))
	if err := p.waitServingWithin(60 * time.Second); err != nil {
		t.Fatalf("the first node stopped serving: %v", err)
	}
}
