package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// Sanitize removes named fields of JSON values, or masks them. A value that
// starts like a JSON object must be exactly one valid object: trailing data
// (`{"user":"ada"} {"password":"x"}`) or a malformed object is refused, since a
// reader that parses it differently would see what the stage was there to
// remove.
type Sanitize struct {
	// Fields are dotted paths: "password", "card.number".
	Fields []string `yaml:"fields"`
	// Mask replaces each field's value; empty removes the field.
	Mask string `yaml:"mask"`
	// CaseInsensitive matches every part of a path regardless of case
	// ("Password" and "PASSWORD" are "password"), removing or masking every
	// field that matches. Default true: JSON readers that bind fields
	// case-insensitively (Go's encoding/json among them) would otherwise read a
	// field the stage let through.
	CaseInsensitive *bool `yaml:"case_insensitive"`
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

func (s Sanitize) foldCase() bool { return s.CaseInsensitive == nil || *s.CaseInsensitive }

func (s Sanitize) Apply(w Write) (Write, bool, error) {
	m, ok, err := exactlyOneObject(w.Value)
	if err != nil {
		return w, false, fmt.Errorf("%w: key %.64q: sanitize: %v", kv.ErrInvalid, w.Key, err)
	}
	if !ok {
		return w, true, nil
	}
	changed := false
	for _, f := range s.Fields {
		if s.sanitize(m, strings.Split(f, ".")) {
			changed = true
		}
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

// sanitize removes or masks every field of m under path; it reports whether
// it changed anything.
func (s Sanitize) sanitize(m map[string]any, path []string) bool {
	changed := false
	for name, v := range m {
		if name != path[0] && !(s.foldCase() && strings.EqualFold(name, path[0])) {
			continue
		}
		if len(path) > 1 {
			if child, ok := v.(map[string]any); ok && s.sanitize(child, path[1:]) {
				changed = true
			}
			continue
		}
		if s.Mask == "" {
			delete(m, name) // deleting the current key of a range is allowed
		} else {
			m[name] = s.Mask
		}
		changed = true
	}
	return changed
}

// exactlyOneObject decodes a value that starts like a JSON object (ok=false
// for any other value); err says why one that starts like an object is not
// exactly one valid object.
func exactlyOneObject(v []byte) (map[string]any, bool, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '{' {
		return nil, false, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber() // keep numbers exactly as they were
	if err := dec.Decode(&m); err != nil {
		return nil, false, fmt.Errorf("the value starts like a JSON object but is not one: %v", err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, fmt.Errorf("trailing data after the JSON object (it ends at byte %d of %d)", end, len(v))
	}
	return m, true, nil
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
