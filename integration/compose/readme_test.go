package compose

import (
	"bufio"
	"regexp"
	"slices"
	"strings"
)

// sections are the README headings whose first sh block TestComposeUp
// runs, one after the other.
var sections = []string{"### Local development with Docker", "### Three nodes with Docker"}

// step is one line of that block: the command, and what its output must
// contain (the text after "# → ", if any).
type step struct {
	cmd, want string
}

// blockSteps returns the commands of the first ```sh block under section.
func blockSteps(readme, section string) []step {
	_, after, ok := strings.Cut(readme, "\n"+section+"\n")
	if !ok {
		return nil
	}
	// The section ends at the next heading.
	if i := strings.Index(after, "\n## "); i >= 0 {
		after = after[:i]
	}
	if i := strings.Index(after, "\n### "); i >= 0 {
		after = after[:i]
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		return nil
	}
	block, _, _ = strings.Cut(block, "```")
	var steps []step
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		cmd, want, _ := strings.Cut(line, "# → ")
		steps = append(steps, step{cmd: strings.TrimSpace(cmd), want: strings.TrimSpace(want)})
	}
	return steps
}

var inlineCompose = regexp.MustCompile("`(docker compose[^`]*)`")

// composeCommands returns every `docker compose ...` command of a text:
// inline code spans, and lines (of sh blocks, or "#   " comment lines of
// the compose file) that start with it.
func composeCommands(text string) []string {
	var cmds []string
	for _, m := range inlineCompose.FindAllStringSubmatch(text, -1) {
		// A code span may wrap over lines: compare its words.
		cmds = append(cmds, strings.Join(strings.Fields(m[1]), " "))
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "#"))
		if strings.HasPrefix(line, "docker compose ") {
			cmd, _, _ := strings.Cut(line, "# ")
			cmds = append(cmds, strings.TrimSpace(cmd))
		}
	}
	slices.Sort(cmds)
	return slices.Compact(cmds)
}

// commentCommands returns the command lines of the compose file's header
// comment (lines "#   <command>").
func commentCommands(compose string) []string {
	var cmds []string
	sc := bufio.NewScanner(strings.NewReader(compose))
	for sc.Scan() {
		if cmd, ok := strings.CutPrefix(sc.Text(), "#   "); ok {
			cmds = append(cmds, strings.TrimSpace(cmd))
		}
	}
	return cmds
}
