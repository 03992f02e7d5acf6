package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// Every flag of `sluice serve` can also be set in the config file (its name
// as a top-level key, dashes or underscores: `node-id: n1`, `node_id: n1`)
// and as an environment variable SLUICE_<NAME> (`SLUICE_NODE_ID=n1`), etcd's
// rule. One precedence for all of them: a flag on the command line, then the
// environment, then the file, then the default. The flags are found by
// walking the flag set, so a flag added to serve is covered without more code.

// configSections are the config file's top-level keys that are not flags.
var configSections = map[string]bool{"pipeline": true, "kafka": true, "storage": true}

// envName is the environment variable of flag name.
func envName(name string) string {
	return "SLUICE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyEnvAndConfig sets every flag not given on the command line from the
// environment or, failing that, from the config file (--config or
// $SLUICE_CONFIG). It refuses a top-level key of the file that is neither a
// flag nor a section, naming the file and line, and a value a flag refuses.
// A flag it sets counts as given (Changed), so the sections' own settings,
// which give way to flags, give way to it too.
func applyEnvAndConfig(fs *pflag.FlagSet) error {
	var fromEnv []string
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Changed {
			if v, ok := os.LookupEnv(envName(f.Name)); ok {
				fromEnv = append(fromEnv, f.Name, v)
			}
		}
	})
	for i := 0; i < len(fromEnv); i += 2 {
		if err := fs.Set(fromEnv[i], fromEnv[i+1]); err != nil {
			return fmt.Errorf("$%s: %v", envName(fromEnv[i]), err)
		}
	}
	path := ""
	if f := fs.Lookup("config"); f != nil {
		path = f.Value.String()
	}
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return fmt.Errorf("config %s: %v", path, err)
	}
	if len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s line %d: want a map of settings at the top", path, doc.Line)
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if configSections[k.Value] {
			continue
		}
		name := strings.ReplaceAll(k.Value, "_", "-")
		f := fs.Lookup(name)
		if f == nil || name == "config" || name == "help" {
			return fmt.Errorf("config %s line %d: unknown key %q (the keys are the flags of sluice serve, such as node-id, and the sections pipeline, kafka and storage)", path, k.Line, k.Value)
		}
		if f.Changed {
			continue
		}
		val, err := scalar(v)
		if err != nil {
			return fmt.Errorf("config %s line %d: %s: %v", path, v.Line, k.Value, err)
		}
		if err := fs.Set(name, val); err != nil {
			return fmt.Errorf("config %s line %d: %s: %v", path, v.Line, k.Value, err)
		}
	}
	return nil
}

// scalar is a config value as its flag would take it: a list as
// comma-separated values (brokers: [a:9092, b:9092]).
func scalar(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		var parts []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("want a list of plain values")
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("want a value or a list of values")
}
