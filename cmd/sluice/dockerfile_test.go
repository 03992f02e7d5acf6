package main

import (
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Issue 28.12: the image exposes every port `sluice serve` listens on by
// default (it left out the control port, 7401), and its comments do not
// describe /debug/pprof as served: it is off unless --pprof.
func TestDockerfileExposesTheServePortsAndNoPprof(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var exposed []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "EXPOSE" {
			exposed = append(exposed, f[1:]...)
		}
		if strings.Contains(line, "pprof") && !regexp.MustCompile(`(only with|unless) --pprof`).MatchString(line) {
			t.Errorf("the Dockerfile mentions pprof as if it were on: %q", line)
		}
		if strings.Contains(line, "CMD") && strings.Contains(line, "pprof") {
			t.Errorf("the image's command turns pprof on: %q", line)
		}
	}
	flags := serveCmd().Flags()
	for _, name := range []string{"data-addr", "control-addr", "http-addr"} {
		_, port, err := net.SplitHostPort(flags.Lookup(name).DefValue)
		if err != nil {
			t.Fatalf("--%s default %q: %v", name, flags.Lookup(name).DefValue, err)
		}
		if !slices.Contains(exposed, port) {
			t.Errorf("--%s listens on port %s by default; the Dockerfile exposes %v", name, port, exposed)
		}
	}
}
