package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/roomcast/roomcast/gateway"
	"gopkg.in/yaml.v3"
)

// parseConfig binds the command line, the environment and the --config file
// onto one gateway.Config through the settings table. Precedence, per
// setting: a flag on the command line, else a non-empty ROOMCAST_<NAME>,
// else the file's key, else the default. It returns the config and the log
// level.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (gateway.Config, string, error) {
	o := defaultOptions()
	table := settings(&o)
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, s := range table {
		fs.Var(s.value, s.name, s.help)
	}
	fs.Usage = func() { printUsage(fs.Output(), table) }
	if err := fs.Parse(args); err != nil {
		return gateway.Config{}, "", err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, s := range table {
		if set[s.name] {
			continue
		}
		if v := getenv(s.envName()); v != "" {
			if err := s.value.Set(v); err != nil {
				return gateway.Config{}, "", fmt.Errorf("%s: %w", s.envName(), err)
			}
			set[s.name] = true
		}
	}
	if fs.NArg() > 0 {
		return gateway.Config{}, "", fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if o.configFile != "" {
		if err := readFile(o.configFile, table, set); err != nil {
			return gateway.Config{}, "", fmt.Errorf("--config %s: %w", o.configFile, err)
		}
	}
	if o.jwtPublicKey != "" {
		pem, err := os.ReadFile(o.jwtPublicKey)
		if err != nil {
			return gateway.Config{}, "", fmt.Errorf("--jwt-public-key: %w", err)
		}
		o.JWTPublicKey = pem
	}
	return o.Config, o.logLevel, nil
}

// defaultOptions are the defaults: the leaf packages' (gathered by
// gateway.DefaultConfig) and this command's.
func defaultOptions() options {
	return options{Config: gateway.DefaultConfig(), logLevel: "info"}
}

// readFile applies the YAML file's keys to the settings not in set. A key
// that names no setting is an error.
func readFile(path string, table []setting, set map[string]bool) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of setting names to values", root.Line)
	}
	byKey := map[string]setting{}
	for _, s := range table {
		if k := s.yamlKey(); k != "" {
			byKey[k] = s
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		s, ok := byKey[k.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown key %q", k.Line, k.Value)
		}
		if seen[k.Value] {
			return fmt.Errorf("line %d: %q set twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		if set[s.name] || v.Tag == "!!null" {
			continue // a flag or variable wins; an empty key leaves the default
		}
		if err := setFromYAML(s, v); err != nil {
			return fmt.Errorf("line %d: %s: %w", v.Line, k.Value, err)
		}
	}
	return nil
}

func setFromYAML(s setting, v *yaml.Node) error {
	switch v.Kind {
	case yaml.ScalarNode:
		return s.value.Set(v.Value)
	case yaml.SequenceNode:
		ls, ok := s.value.(listSetter)
		if !ok {
			return errors.New("want a single value, not a list")
		}
		items := make([]string, 0, len(v.Content))
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: want a list of strings", item.Line)
			}
			items = append(items, item.Value)
		}
		ls.setList(items)
		return nil
	default:
		return errors.New("want a value")
	}
}

// printUsage is --help: every setting of the table, by group.
func printUsage(w io.Writer, table []setting) {
	fmt.Fprint(w, `Usage: gateway [flags]

Roomcast gateway node. Every flag can also be set as ROOMCAST_<NAME>
(e.g. --jwt-secret as ROOMCAST_JWT_SECRET) and, but for --config, as a key of
the --config YAML file (jwt-secret: ...). A flag on the command line wins over
the environment, which wins over the file.
`)
	for _, g := range []string{groupNode, groupDurable, groupPresence, groupLimits, groupHooks, groupTimeouts} {
		fmt.Fprintf(w, "\n%s:\n", groupTitles[g])
		for _, s := range table {
			if s.group != g {
				continue
			}
			// The flag package's layout ("  -name type"): scripts look
			// for " -redis " in it.
			fmt.Fprintf(w, "  -%s", s.name)
			if t := s.value.typeName(); t != "" {
				fmt.Fprintf(w, " %s", t)
			}
			fmt.Fprintf(w, "\n    \t%s (%s", s.help, s.envName())
			switch d := s.defaultText(); {
			case d == "" || d == "false":
			case s.value.typeName() == "string" && s.value.String() != "":
				fmt.Fprintf(w, "; default %q", d)
			default:
				fmt.Fprintf(w, "; default %s", d)
			}
			fmt.Fprint(w, ")\n")
		}
	}
}

// markdownTable is the table of one group's settings in docs/OPERATIONS.md.
func markdownTable(table []setting, group string) string {
	var b strings.Builder
	b.WriteString("| flag | YAML key | environment | default | meaning |\n|---|---|---|---|---|\n")
	for _, s := range table {
		if s.group != group {
			continue
		}
		key := "—"
		if k := s.yamlKey(); k != "" {
			key = "`" + k + "`"
		}
		def := s.defaultText()
		if s.value.String() != "" {
			def = "`" + def + "`"
		} else if def == "" {
			def = "—"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | `%s` | %s | %s |\n", s.name, key, s.envName(), def, strings.ReplaceAll(s.help, "|", `\|`))
	}
	return b.String()
}
