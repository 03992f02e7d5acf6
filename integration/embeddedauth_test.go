package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kcatRun runs kcat with args, lines on its stdin, and returns its output
// and whether it exited 0.
func kcatRun(t *testing.T, lines string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command("kcat", args...)
	cmd.Stdin = strings.NewReader(lines)
	out, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("kcat: %v", err)
	}
	return string(out), err == nil
}

// Issue 22, item 10, with the tools the README names: the embedded broker
// refuses kcat without credentials (it could write the registry before), a
// collector's credentials from `sluice kafka-credentials` write the ingest
// topic (read back with `sluice get`) and not the registry.
func TestKcatNeedsTheEmbeddedBrokersCredentials(t *testing.T) {
	dir, kafka := t.TempDir(), freeAddr(t)
	p := newProcArgs(t, dir, "--embedded-kafka-addr", kafka)
	p.start()
	props := collectorProperties(t, dir, kafka)
	if out, ok := kcatRun(t, "x\n", "-b", kafka, "-t", "sluice.registry", "-P", "-k", "node/n1"); ok || !strings.Contains(out, "SASL") {
		t.Fatalf("kcat without credentials to the registry: exit 0 %v, want refused for want of SASL: %s", ok, out)
	}
	if out, ok := kcatRun(t, "x\n", "-F", props, "-t", "sluice.registry", "-P", "-k", "node/n1"); ok || !strings.Contains(out, "authorization failed") {
		t.Fatalf("kcat with a collector's credentials to the registry: exit 0 %v, want refused with \"Topic authorization failed\": %s", ok, out)
	}
	if out, ok := kcatRun(t, "user:1\tAda\n", "-F", props, "-t", "sluice.ingest", "-P", "-K", "\t"); !ok {
		t.Fatalf("kcat with a collector's credentials to the ingest topic: %s", out)
	}
	eventually(t, 60*time.Second, func() error {
		if out, errs, code := sluice(t, p.addr, "get", "user:1"); code != 0 || out != "Ada\n" {
			return fmt.Errorf("get user:1 = %q %q (exit %d)", out, errs, code)
		}
		return nil
	})
}

// collectorProperties writes what `sluice kafka-credentials` prints for the
// embedded broker of the node on dir (a collector's librdkafka properties)
// to a file and returns its path, for kcat -F.
func collectorProperties(t *testing.T, dir, kafka string) string {
	t.Helper()
	out, err := exec.Command(sluiceBin, "kafka-credentials", "--data-dir", dir, "--embedded-kafka-addr", kafka).Output()
	if err != nil {
		t.Fatalf("sluice kafka-credentials: %v", err)
	}
	props := filepath.Join(t.TempDir(), "collector.properties")
	if err := os.WriteFile(props, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return props
}
