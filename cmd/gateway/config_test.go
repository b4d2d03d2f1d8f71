package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFlagsEnvAndFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "roomcast.yaml")
	if err := os.WriteFile(file, []byte("namespaces: [/chat, /admin]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, level, err := parseConfig(
		[]string{"--addr", "127.0.0.1:1", "--allow-anonymous", "--config", file},
		env(map[string]string{
			"ROOMCAST_ADDR":          "127.0.0.1:2", // the flag wins
			"ROOMCAST_API_TOKEN":     "tok",
			"ROOMCAST_DRAIN_TIMEOUT": "3s",
			"ROOMCAST_ORIGINS":       "https://a.example, https://b.example",
			"ROOMCAST_LOG_LEVEL":     "debug",
		}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:1" || cfg.APIToken != "tok" || cfg.DrainTimeout != 3*time.Second ||
		!cfg.AllowAnonymous || level != "debug" {
		t.Fatalf("config = %+v level %q", cfg, level)
	}
	if !slices.Equal(cfg.Origins, []string{"https://a.example", "https://b.example"}) {
		t.Fatalf("origins = %q", cfg.Origins)
	}
	if !slices.Equal(cfg.Namespaces, []string{"/chat", "/admin"}) {
		t.Fatalf("namespaces = %q", cfg.Namespaces)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(badYAML, []byte("namespacez: [/x]\n"), 0o600)
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"unknown flag", []string{"--nope"}, nil},
		{"bad duration in env", nil, map[string]string{"ROOMCAST_DRAIN_TIMEOUT": "soon"}},
		{"missing key file", []string{"--jwt-public-key", filepath.Join(dir, "none.pem")}, nil},
		{"unknown YAML field", []string{"--config", badYAML}, nil},
		{"stray argument", []string{"extra"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseConfig(tt.args, env(tt.env), io.Discard); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
