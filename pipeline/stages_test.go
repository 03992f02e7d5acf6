package pipeline

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sluicedb/sluice/kv"
)

func TestBuiltinStages(t *testing.T) {
	stages, err := NewRegistry().ParseConfig([]byte(`
pipeline:
  - filter: {prefixes: ["tmp/"], action: drop}
  - filter: {field: status, equals: banned, action: reject}
  - sanitize: {fields: [password, card.number], mask: "***"}
  - sanitize: {fields: [secret]}
  - enrich: {fields: {via: source, at: timestamp, team: "=core"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	run := func(key, value string) (string, bool, error) {
		w, keep, err := Run(stages, Write{Key: []byte(key), Value: []byte(value), Source: "ingest", Timestamp: 7})
		return string(w.Value), keep, err
	}
	if _, keep, err := run("tmp/x", `{"a":1}`); keep || err != nil {
		t.Fatalf("a tmp/ key was not dropped: %v %v", keep, err)
	}
	if _, _, err := run("u1", `{"status":"banned"}`); !errors.Is(err, kv.ErrInvalid) || !strings.Contains(err.Error(), "filter") {
		t.Fatalf("a banned value was not rejected: %v", err)
	}
	out, keep, err := run("u2", `{"name":"ada","password":"p","secret":"s","card":{"number":"4111","exp":"12/30"},"n":12345678901234567890}`)
	if err != nil || !keep {
		t.Fatal(err)
	}
	for _, want := range []string{`"password":"***"`, `"number":"***"`, `"exp":"12/30"`, `"via":"ingest"`, `"at":7`, `"team":"core"`, `"n":12345678901234567890`} {
		if !strings.Contains(out, want) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("%s still has the removed field", out)
	}
	if out, keep, err := run("u3", "not json"); out != "not json" || !keep || err != nil {
		t.Fatalf("a non-JSON value changed: %q %v %v", out, keep, err)
	}
}

func TestBadConfigNamesTheLine(t *testing.T) {
	cases := map[string]string{
		"pipeline:\n  - sanitize: {fields: [a]}\n  - frobnicate: {}\n": `3: unknown stage "frobnicate"`,
		"pipeline:\n  - filter: {prefixes: [a], action: explode}\n":    `2: filter: action "explode"`,
		"pipeline:\n  - sanitize: {fields: [a], colour: red}\n":        "2: sanitize:",
		"pipeline:\n  - enrich: {fields: {x: moon}}\n":                 `2: enrich: field x: source "moon"`,
		"pipeline:\n  - sanitize: {}\n":                                "2: sanitize: fields must name",
		"pipeline:\n  - sanitize: {fields: [a]}\n    filter: {}\n":     "2: a pipeline stage is a map of one stage name",
		"pipeline: [\n": "yaml",
	}
	for in, want := range cases {
		if _, err := NewRegistry().ParseConfig([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

type upper struct{}

func (upper) Apply(w Write) (Write, bool, error) {
	w.Value = []byte(strings.ToUpper(string(w.Value)))
	return w, true, nil
}

func TestCustomStage(t *testing.T) {
	reg := NewRegistry()
	reg.Register("upper", func(*yaml.Node) (Stage, error) { return upper{}, nil })
	stages, err := reg.ParseConfig([]byte("pipeline:\n  - upper: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w, _, _ := Run(stages, Write{Value: []byte("abc")}); string(w.Value) != "ABC" {
		t.Fatalf("custom stage: %q", w.Value)
	}
}

// Each registry is its own: a stage registered in one is unknown to another.
func TestRegistriesAreValues(t *testing.T) {
	a, b := NewRegistry(), NewRegistry()
	a.Register("upper", func(*yaml.Node) (Stage, error) { return upper{}, nil })
	if _, err := b.ParseConfig([]byte("pipeline:\n  - upper: {}\n")); err == nil || !strings.Contains(err.Error(), `unknown stage "upper"`) {
		t.Fatalf("a stage registered elsewhere is known: %v", err)
	}
}

// The sanitize stage cannot be bypassed: a second JSON value after the first
// is refused rather than passed through, and field names match regardless
// of case unless the config asks for exact names.
func TestSanitizeCannotBeBypassed(t *testing.T) {
	stages, err := NewRegistry().ParseConfig([]byte("pipeline:\n  - sanitize: {fields: [password, card.number]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(value string) (string, error) {
		w, _, err := Run(stages, Write{Key: []byte("k"), Value: []byte(value)})
		return string(w.Value), err
	}
	for _, bad := range []string{
		`{"user":"ada"} {"password":"hunter2"}`,
		`{"user":"ada"}{"password":"hunter2"}`,
		`{"user":"ada"} trailing`,
		`{"user":"ada", "password":"hunter2"`,
	} {
		if out, err := run(bad); !errors.Is(err, kv.ErrInvalid) {
			t.Errorf("%s: passed as %q, %v; want ErrInvalid", bad, out, err)
		}
	}
	out, err := run(` {"user":"ada","Password":"a","PASSWORD":"b","Card":{"NUMBER":"4111","exp":"12/30"}} ` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(out), "password") || strings.Contains(out, "4111") || !strings.Contains(out, `"exp":"12/30"`) {
		t.Errorf("case-insensitive sanitize left %s", out)
	}
	exact, err := NewRegistry().ParseConfig([]byte("pipeline:\n  - sanitize: {fields: [password], case_insensitive: false}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, _, err := Run(exact, Write{Key: []byte("k"), Value: []byte(`{"password":"a","Password":"b"}`)})
	if err != nil || string(w.Value) != `{"Password":"b"}` {
		t.Errorf("case_insensitive: false: %s %v", w.Value, err)
	}
}
