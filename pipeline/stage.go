package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"gopkg.in/yaml.v3"
)

// Write is one upsert as a stage sees it, inside the partition's goroutine,
// after validation and the clock.
type Write struct {
	Key   []byte
	Value []byte
	// Source is "grpc" or "ingest".
	Source string
	// Timestamp is the partition clock's stamp of the write.
	Timestamp uint64
}

// Stage transforms a write, drops it, or rejects it. Stages run in the
// partition's goroutine, in order, identically for gRPC writes and ingest
// records; they must be deterministic and quick.
type Stage interface {
	// Apply returns the write to store (possibly changed) and keep=true; or
	// keep=false to drop it silently; or an error wrapping kv.ErrInvalid to refuse
	// it (the request fails with InvalidArgument; an ingest record goes to the DLQ).
	Apply(w Write) (out Write, keep bool, err error)
}

// Builder makes a stage from its YAML settings.
type Builder func(settings *yaml.Node) (Stage, error)

// Registry names the stages a config file may use. It is a value: each node
// (or test) has its own; nothing is registered globally.
type Registry struct {
	builders map[string]Builder
}

// NewRegistry returns a registry of the built-in stages: sanitize, filter,
// enrich.
func NewRegistry() *Registry {
	r := &Registry{builders: map[string]Builder{}}
	r.Register("sanitize", buildSanitize)
	r.Register("filter", buildFilter)
	r.Register("enrich", buildEnrich)
	return r
}

// Register makes a stage available to config files under name. Library
// users register their own stages the same way the built-ins are.
func (r *Registry) Register(name string, b Builder) { r.builders[name] = b }

// Run applies stages in order.
func Run(stages []Stage, w Write) (Write, bool, error) {
	for _, s := range stages {
		var keep bool
		var err error
		if w, keep, err = s.Apply(w); err != nil || !keep {
			return w, keep, err
		}
	}
	return w, true, nil
}

// Config is a sluice config file:
//
//	pipeline:
//	  - sanitize: {fields: [password, card.number], mask: "***"}
//	  - filter: {prefixes: ["tmp/"], action: drop}
//	  - enrich: {fields: {written_at: timestamp, via: source}}
type Config struct {
	Pipeline []yaml.Node `yaml:"pipeline"`
}

// LoadConfig reads a config file and builds its stages. An error names the
// file and line.
func (r *Registry) LoadConfig(path string) ([]Stage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	stages, err := r.ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return stages, nil
}

// ParseConfig builds the stages of a config file's contents.
func (r *Registry) ParseConfig(b []byte) ([]Stage, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%v", err)
	}
	var cfg Config
	if err := root.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%v", err)
	}
	var stages []Stage
	for i := range cfg.Pipeline {
		n := &cfg.Pipeline[i]
		if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
			return nil, fmt.Errorf("%d: a pipeline stage is a map of one stage name to its settings", n.Line)
		}
		name, settings := n.Content[0].Value, n.Content[1]
		build, ok := r.builders[name]
		if !ok {
			return nil, fmt.Errorf("%d: unknown stage %q (known: %v)", n.Line, name, r.known())
		}
		s, err := build(settings)
		if err != nil {
			return nil, fmt.Errorf("%d: %s: %w", settings.Line, name, err)
		}
		stages = append(stages, s)
	}
	return stages, nil
}

func (r *Registry) known() []string {
	var names []string
	for n := range r.builders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// decodeStrict decodes settings into v, refusing unknown fields.
func decodeStrict(settings *yaml.Node, v any) error {
	b, err := yaml.Marshal(settings)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
