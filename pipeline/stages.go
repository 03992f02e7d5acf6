package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluicedb/sluice/clock"
	"github.com/sluicedb/sluice/kv"
)

// The built-in stages act on values that are JSON objects; other values pass
// through them unchanged (a filter by key prefix acts on every write).

// object decodes a JSON object value, or reports that it is not one.
func object(v []byte) (map[string]any, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '{' {
		return nil, false
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber() // keep numbers exactly as they were
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	return m, true
}

// walk finds the object holding a dotted path's last field.
func walk(m map[string]any, path string) (map[string]any, string) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			return nil, ""
		}
		m = next
	}
	return m, parts[len(parts)-1]
}

// Sanitize removes named fields of JSON values, or masks them.
type Sanitize struct {
	// Fields are dotted paths: "password", "card.number".
	Fields []string `yaml:"fields"`
	// Mask replaces each field's value; empty removes the field.
	Mask string `yaml:"mask"`
}

func buildSanitize(n *yaml.Node) (Stage, error) {
	var s Sanitize
	if err := decodeStrict(n, &s); err != nil {
		return nil, err
	}
	if len(s.Fields) == 0 {
		return nil, fmt.Errorf("fields must name at least one field")
	}
	return s, nil
}

func (s Sanitize) Apply(w Write) (Write, bool, error) {
	m, ok := object(w.Value)
	if !ok {
		return w, true, nil
	}
	changed := false
	for _, f := range s.Fields {
		holder, last := walk(m, f)
		if holder == nil {
			continue
		}
		if _, ok := holder[last]; !ok {
			continue
		}
		if s.Mask == "" {
			delete(holder, last)
		} else {
			holder[last] = s.Mask
		}
		changed = true
	}
	if changed {
		b, err := json.Marshal(m)
		if err != nil {
			return w, false, err
		}
		w.Value = b
	}
	return w, true, nil
}

// Filter drops or rejects writes whose key has one of Prefixes, or whose JSON
// value has Field equal to Equals.
type Filter struct {
	Prefixes []string `yaml:"prefixes"`
	Field    string   `yaml:"field"`
	Equals   string   `yaml:"equals"`
	// Action is "drop" (silently, the default) or "reject" (InvalidArgument;
	// an ingest record goes to the DLQ).
	Action string `yaml:"action"`
}

func buildFilter(n *yaml.Node) (Stage, error) {
	var f Filter
	if err := decodeStrict(n, &f); err != nil {
		return nil, err
	}
	if len(f.Prefixes) == 0 && f.Field == "" {
		return nil, fmt.Errorf("give prefixes, or a field and the value it equals")
	}
	switch f.Action {
	case "":
		f.Action = "drop"
	case "drop", "reject":
	default:
		return nil, fmt.Errorf("action %q is neither drop nor reject", f.Action)
	}
	return f, nil
}

func (f Filter) matches(w Write) bool {
	for _, p := range f.Prefixes {
		if bytes.HasPrefix(w.Key, []byte(p)) {
			return true
		}
	}
	if f.Field == "" {
		return false
	}
	m, ok := object(w.Value)
	if !ok {
		return false
	}
	holder, last := walk(m, f.Field)
	if holder == nil {
		return false
	}
	v, ok := holder[last]
	return ok && fmt.Sprint(v) == f.Equals
}

func (f Filter) Apply(w Write) (Write, bool, error) {
	if !f.matches(w) {
		return w, true, nil
	}
	if f.Action == "reject" {
		return w, false, fmt.Errorf("%w: key %.64q refused by a pipeline filter", kv.ErrInvalid, w.Key)
	}
	return w, false, nil
}

// Enrich adds fields to JSON object values. Each field's source is
// "timestamp" (the write's clock stamp), "wall_time" (its RFC 3339 time),
// "source" (grpc or ingest), or "=text" for the text itself.
type Enrich struct {
	Fields map[string]string `yaml:"fields"`
}

func buildEnrich(n *yaml.Node) (Stage, error) {
	var e Enrich
	if err := decodeStrict(n, &e); err != nil {
		return nil, err
	}
	if len(e.Fields) == 0 {
		return nil, fmt.Errorf("fields must name at least one field")
	}
	for name, src := range e.Fields {
		switch {
		case src == "timestamp", src == "wall_time", src == "source", strings.HasPrefix(src, "="):
		default:
			return nil, fmt.Errorf("field %s: source %q is none of timestamp, wall_time, source, =text", name, src)
		}
	}
	return e, nil
}

func (e Enrich) Apply(w Write) (Write, bool, error) {
	m, ok := object(w.Value)
	if !ok {
		return w, true, nil
	}
	for name, src := range e.Fields {
		switch {
		case src == "timestamp":
			m[name] = w.Timestamp
		case src == "wall_time":
			m[name] = clock.Wall(w.Timestamp).UTC().Format(time.RFC3339Nano)
		case src == "source":
			m[name] = w.Source
		default:
			m[name] = strings.TrimPrefix(src, "=")
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return w, false, err
	}
	w.Value = b
	return w, true, nil
}
