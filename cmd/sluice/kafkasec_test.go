package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The config file's kafka section and the flags (which win) become the
// node's kafkasec.Security; secrets come from files.
func TestKafkaSecurityFromConfigAndFlags(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "pw", "s3cret\n")
	cfg := write(t, dir, "sluice.yaml", `
pipeline:
  - sanitize: {fields: [password]}
kafka:
  tls: {enabled: true, server_name: kafka.internal}
  sasl: {mechanism: scram-sha-512, user: sluice, password_file: `+filepath.Join(dir, "pw")+`}
`)
	k, err := loadKafkaSecurity(cfg, kafkaSecurity{})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := k.build()
	if err != nil {
		t.Fatal(err)
	}
	if sec.TLS == nil || sec.TLS.ServerName != "kafka.internal" || sec.SASL == nil || sec.SASL.Name() != "SCRAM-SHA-512" {
		t.Fatalf("from the file: %v (server name %q)", sec, sec.TLS.ServerName)
	}

	var flags kafkaSecurity
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	flags.register(fs)
	if err := fs.Parse([]string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-user", "other"}); err != nil {
		t.Fatal(err)
	}
	if k, err = loadKafkaSecurity(cfg, flags); err != nil {
		t.Fatal(err)
	}
	if k.SASL.Mechanism != "PLAIN" || k.SASL.User != "other" || k.SASL.PasswordFile == "" || !k.TLS.Enabled {
		t.Fatalf("flags over the file: %+v", k)
	}

	// OAUTHBEARER reads its token file at every connection.
	tok := write(t, dir, "token", "one")
	k = kafkaSecurity{}
	k.SASL.Mechanism, k.SASL.TokenFile = "OAUTHBEARER", tok
	mech, err := k.mechanism()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two"} {
		write(t, dir, "token", want)
		_, first, err := mech.Authenticate(context.Background(), "broker:9092")
		if err != nil || !strings.Contains(string(first), "Bearer "+want) {
			t.Fatalf("token %q: first message %q, %v", want, first, err)
		}
	}
}

func TestKafkaSecurityRefusesMistakes(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct {
		file string
		want string
	}{
		"typo":               {"kafka:\n  sasl: {mechanizm: PLAIN}\n", "field mechanizm not found"},
		"no mechanism":       {"kafka:\n  sasl: {user: a, password: b}\n", "no mechanism"},
		"no password":        {"kafka:\n  sasl: {mechanism: SCRAM-SHA-256, user: a}\n", "needs a user"},
		"unknown":            {"kafka:\n  sasl: {mechanism: GSSAPI, user: a, password: b}\n", `"GSSAPI" is none of`},
		"no token":           {"kafka:\n  sasl: {mechanism: OAUTHBEARER}\n", "needs a token"},
		"missing CA":         {"kafka:\n  tls: {ca: /nonexistent/ca.pem}\n", "kafka TLS CA"},
		"half a cert":        {"kafka:\n  tls: {cert: c.pem}\n", "needs both"},
		"plain in the clear": {"kafka:\n  sasl: {mechanism: PLAIN, user: a, password: b}\n", "set --kafka-sasl-allow-plaintext"},
		"token in the clear": {"kafka:\n  sasl: {mechanism: OAUTHBEARER, token: t}\n", "dial them over TLS (--kafka-tls"},
	}
	for name, tc := range cases {
		k, err := loadKafkaSecurity(write(t, dir, "c.yaml", tc.file), kafkaSecurity{})
		if err == nil {
			_, err = k.build()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// Said on purpose, in the file or with the flag, SASL PLAIN without TLS is
// allowed.
func TestKafkaSASLAllowPlaintext(t *testing.T) {
	dir := t.TempDir()
	for _, allow := range []string{"kafka:\n  sasl: {mechanism: PLAIN, user: a, password: b, allow_plaintext: true}\n", "--kafka-sasl-allow-plaintext"} {
		var flags kafkaSecurity
		file := "kafka:\n  sasl: {mechanism: PLAIN, user: a, password: b}\n"
		if strings.HasPrefix(allow, "--") {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			flags.register(fs)
			if err := fs.Parse([]string{allow}); err != nil {
				t.Fatal(err)
			}
		} else {
			file = allow
		}
		k, err := loadKafkaSecurity(write(t, dir, "c.yaml", file), flags)
		if err != nil {
			t.Fatal(err)
		}
		if sec, err := k.build(); err != nil || !sec.AllowPlaintextSASL || sec.TLS != nil {
			t.Errorf("%q: %v, %v", allow, sec, err)
		}
	}
}

// The serve command listens on loopback unless told otherwise, and serves
// no pprof.
func TestServeDefaultsExposeNothing(t *testing.T) {
	f := serveCmd().Flags()
	for _, name := range []string{"data-addr", "control-addr", "http-addr", "embedded-kafka-addr"} {
		host, _, err := net.SplitHostPort(f.Lookup(name).DefValue)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Errorf("--%s defaults to %q, not a loopback address", name, f.Lookup(name).DefValue)
		}
	}
	if d := f.Lookup("pprof").DefValue; d != "off" {
		t.Errorf("--pprof defaults to %q", d)
	}
	if err := f.Parse([]string{"--pprof"}); err != nil || f.Lookup("pprof").Value.String() != "local" {
		t.Errorf("--pprof alone: %q %v, want local", f.Lookup("pprof").Value, err)
	}
}
