package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kafka-credentials makes the embedded broker's credentials in the data
// directory (0600) if missing and prints the same collector's every time,
// as a kcat -F file.
func TestKafkaCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	run := func(args ...string) string {
		t.Helper()
		cmd := kafkaCredentialsCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(append([]string{"--data-dir", dir, "--embedded-kafka-addr", "127.0.0.1:21703"}, args...))
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	first := run()
	for _, want := range []string{"bootstrap.servers=127.0.0.1:21703\n", "security.protocol=SASL_PLAINTEXT\n", "sasl.mechanisms=SCRAM-SHA-256\n", "sasl.username=collector\n", "sasl.password="} {
		if !strings.Contains(first, want) {
			t.Fatalf("kafka-credentials printed %q, without %q", first, want)
		}
	}
	if again := run(); again != first {
		t.Fatal("a second kafka-credentials printed other credentials")
	}
	if admin := run("--admin"); !strings.Contains(admin, "sasl.username=sluice\n") || admin == first {
		t.Fatalf("kafka-credentials --admin printed %q", admin)
	}
	fi, err := os.Stat(filepath.Join(dir, "kafka.credentials"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("kafka.credentials has mode %v, want 0600", fi.Mode().Perm())
	}
}
