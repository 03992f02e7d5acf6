package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluicedb/sluice/client"
	"github.com/sluicedb/sluice/internal/kafkatest"
)

// sluice runs the CLI against addr and returns its stdout, stderr and exit code.
func sluice(t *testing.T, addr string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(sluiceBin, append(args, "--addr", addr)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// The embedded default: no --brokers, a kfake broker persisted under the data
// directory. put/get/rm work, a missing key exits 1 with a clear message, and
// state survives kill -9.
func TestCLIAgainstEmbeddedBroker(t *testing.T) {
	dir := t.TempDir()
	p := newProcArgs(t, dir, "--embedded-kafka-addr", freeAddr(t))
	p.start()
	if out, errs, code := sluice(t, p.addr, "put", "hello", "world"); code != 0 || !strings.HasPrefix(out, "version 1 ") {
		t.Fatalf("put: %q %q %d", out, errs, code)
	}
	if out, _, code := sluice(t, p.addr, "put", "bye", "now"); code != 0 {
		t.Fatalf("put bye: %q %d", out, code)
	}
	if _, _, code := sluice(t, p.addr, "rm", "bye"); code != 0 {
		t.Fatalf("rm exit %d", code)
	}
	_, errs, code := sluice(t, p.addr, "get", "nope")
	if code != 3 || !strings.Contains(errs, `key "nope" not found`) { // 3: not found
		t.Fatalf("get of a missing key: exit %d, stderr %q", code, errs)
	}
	p.kill()
	p.start()
	if out, _, code := sluice(t, p.addr, "get", "hello"); code != 0 || out != "world\n" {
		t.Fatalf("get after kill -9: %q exit %d", out, code)
	}
	if _, _, code := sluice(t, p.addr, "get", "bye"); code != 3 {
		t.Fatal("a removed key came back after kill -9")
	}
	if _, err := os.Stat(dir + "/kafka"); err != nil {
		t.Fatalf("the embedded broker keeps nothing under the data dir: %v", err)
	}
}

// DESIGN: a node with 16 idle partitions stays under 512 MiB RSS.
func TestSixteenIdlePartitionsStayUnder512MiB(t *testing.T) {
	p := newProc(t, kafkatest.ClusterName(t), t.TempDir(), "--partitions", "16")
	p.start()
	c, err := client.New(p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 64; i++ { // a few writes per partition open every code path
		if _, err := c.Upsert(context.Background(), client.Entry{Key: fmt.Append(nil, "k", i), Value: bytes.Repeat([]byte("v"), 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	rss := vmRSS(t, p.cmd.Process.Pid)
	t.Logf("RSS with 16 idle partitions: %d MiB", rss>>20)
	if rss > 512<<20 {
		t.Fatalf("RSS %d MiB is over the 512 MiB budget", rss>>20)
	}
}

// A config file's stages shape what is stored; a bad one is refused at start
// with a message naming the file and line.
func TestConfigFileStages(t *testing.T) {
	bad := t.TempDir() + "/bad.yaml"
	os.WriteFile(bad, []byte("pipeline:\n  - sanitize: {fields: [a]}\n  - frobnicate: {}\n"), 0o644)
	out, err := exec.Command(sluiceBin, "serve", "--config", bad, "--data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), bad+`:3: unknown stage "frobnicate"`) {
		t.Fatalf("a bad config: %v %s", err, out)
	}
	p := newProc(t, kafkatest.ClusterName(t), t.TempDir(), "--config", "../examples/sluice.yaml")
	p.start()
	if _, errs, code := sluice(t, p.addr, "put", "user:1", `{"name":"ada","password":"x","card":{"number":"4111"}}`); code != 0 {
		t.Fatalf("put: %s", errs)
	}
	got, _, code := sluice(t, p.addr, "get", "user:1")
	if code != 0 || strings.Contains(got, "password") || !strings.Contains(got, `"number":"****"`) || !strings.Contains(got, `"via":"grpc"`) {
		t.Fatalf("stored %q", got)
	}
	if _, _, code := sluice(t, p.addr, "put", "tmp/x", "{}"); code != 0 {
		t.Fatal("a dropped write is not an error")
	}
	if _, _, code := sluice(t, p.addr, "get", "tmp/x"); code != 3 {
		t.Fatal("a write the pipeline drops was stored")
	}
}
