package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// readmeSections are the README sections whose shell blocks run as a test:
// the first hour of a user, from the install line on.
var readmeSections = []string{"## Run it", "### Conditional writes and counters"}

// TestREADME runs the shell blocks of the README's user sections as a user
// types them (through sh, with the sluice under test on PATH) and checks what
// a line says it prints: a comment "# → TEXT" is its output ("…" stands for
// anything), "(exit N)" at its end the exit code. A bare `sluice serve` runs
// in the background on free ports, which $SLUICE_* variables hand to it and
// to the commands after it, so the README's lines run verbatim. Lines of
// other tools run when the tool is installed (grpcurl, kcat); go install is
// skipped (the binary under test is on PATH). A default address in a line
// (localhost:7400) is the test node's.
func TestREADME(t *testing.T) {
	script, err := readmeScript("../../README.md", readmeSections)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "readme.txtar"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	p := scriptParams(t, dir)
	p.Cmds["waitready"] = func(ts *testscript.TestScript, neg bool, args []string) {
		url := "http://" + ts.Getenv("SLUICE_HTTP_ADDR") + "/readyz"
		deadline := time.Now().Add(2 * time.Minute)
		for {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			if time.Now().After(deadline) {
				ts.Fatalf("%s: not ready after 2 minutes (%v)", url, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	p.Setup = func(env *testscript.Env) error {
		ports := make([]string, 4)
		for i := range ports {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			ports[i] = ln.Addr().String()
			defer ln.Close()
		}
		env.Setenv("SLUICE_DATA_ADDR", ports[0])
		env.Setenv("SLUICE_ADDR", ports[0])
		env.Setenv("SLUICE_CONTROL_ADDR", ports[1])
		env.Setenv("SLUICE_HTTP_ADDR", ports[2])
		env.Setenv("SLUICE_EMBEDDED_KAFKA_ADDR", ports[3])
		env.Setenv("SLUICE_LOG_LEVEL", "warn")
		return nil
	}
	testscript.Run(t, p)
}

// readmeScript turns the shell blocks of the README's sections into a
// testscript.
func readmeScript(path string, sections []string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	want := map[string]bool{}
	for _, s := range sections {
		want[s] = true
	}
	var (
		out       strings.Builder
		section   string
		inBlock   bool
		ran       int
		continued string
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#") && !inBlock:
			section = line
			continue
		case strings.HasPrefix(line, "```sh") && !inBlock:
			inBlock = true
			continue
		case strings.HasPrefix(line, "```") && inBlock:
			inBlock = false
			continue
		case !inBlock || !want[section]:
			continue
		}
		if strings.HasSuffix(line, "\\") {
			continued += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, continued = continued+line, ""
		fmt.Fprintf(&out, "\n# README.md:%d: %s\n", n, line)
		ran += readmeLine(&out, line)
	}
	if ran == 0 {
		return "", fmt.Errorf("%s: no command of sections %v ran", path, sections)
	}
	return out.String(), sc.Err()
}

var exitRE = regexp.MustCompile(`\s*\(exit (\d+)\)$`)

// readmeLine writes the script lines of one README line; it returns 1 if it
// runs a command.
func readmeLine(out *strings.Builder, line string) int {
	cmd, comment, _ := strings.Cut(line, " # ")
	cmd = strings.TrimSpace(cmd)
	fields := strings.Fields(cmd)
	if len(fields) == 0 {
		return 0
	}
	switch {
	case fields[0] == "go" && len(fields) > 1 && fields[1] == "install":
		fmt.Fprintln(out, "# skipped: the sluice under test is on PATH")
		return 0
	case cmd == "sluice serve":
		fmt.Fprintln(out, "exec sluice serve &\nwaitready")
		return 1
	}
	// The node under test listens on free ports, not the defaults.
	for _, host := range []string{"localhost", "127.0.0.1"} {
		for port, env := range map[string]string{"7400": "$SLUICE_ADDR", "7401": "$SLUICE_CONTROL_ADDR", "7402": "$SLUICE_HTTP_ADDR", "7403": "$SLUICE_EMBEDDED_KAFKA_ADDR"} {
			cmd = strings.ReplaceAll(cmd, host+":"+port, env)
		}
	}
	cond := ""
	if fields[0] != "sluice" && fields[0] != "echo" && fields[0] != "cat" && fields[0] != "printf" {
		cond = "[exec:" + fields[0] + "] "
	}
	code := "0"
	expect := ""
	if c := strings.TrimSpace(comment); strings.HasPrefix(c, "→") {
		expect = strings.TrimSpace(strings.TrimPrefix(c, "→"))
		if m := exitRE.FindStringSubmatch(expect); m != nil {
			code, expect = m[1], strings.TrimSpace(expect[:len(expect)-len(m[0])])
		}
	}
	fmt.Fprintf(out, "%sexits %s sh -c %s\n", cond, code, quote(cmd+" 2>&1"))
	if expect != "" {
		re := strings.ReplaceAll(regexp.QuoteMeta(expect), "…", ".*")
		fmt.Fprintf(out, "%sstdout %s\n", cond, quote(re))
	}
	return 1
}

// quote is s as one testscript argument.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
