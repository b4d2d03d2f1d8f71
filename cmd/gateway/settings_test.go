package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/gateway"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/socketio"
)

var update = flag.Bool("update", false, "rewrite the settings tables of docs/OPERATIONS.md")

func writeFile(t testing.TB, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "roomcast.yaml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func table() []setting {
	var o options
	return settings(&o)
}

// TestNamesStay pins the flag and variable names that scripts, the compose
// file, the Dockerfile and the docs use.
func TestNamesStay(t *testing.T) {
	t.Parallel()
	var names []string
	for _, s := range table() {
		names = append(names, s.name)
	}
	for _, want := range []string{
		"addr", "admin-addr", "node-id", "redis", "redis-prefix", "adapter", "jwt-secret",
		"jwt-public-key", "allow-anonymous", "api-token", "origins", "drain-timeout", "demo",
		"config", "log-level", "ping-interval", "ping-timeout", "max-payload", "max-queue-bytes",
		"event-rate", "recovery-window", "queue-retention", "queue-maxlen", "durable-rooms",
		"durable-room-members",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("no --%s", want)
		}
	}
	seen := map[string]bool{}
	for _, s := range table() {
		if seen[s.name] {
			t.Errorf("--%s twice", s.name)
		}
		seen[s.name] = true
		if s.help == "" || groupTitles[s.group] == "" {
			t.Errorf("--%s: no help or no group", s.name)
		}
	}
	if got := (setting{name: "jwt-secret"}).envName(); got != "ROOMCAST_JWT_SECRET" {
		t.Errorf("env name %s", got)
	}
}

// TestDefaultsFromLeaves: the defaults the command starts from are the
// leaf packages' own.
func TestDefaultsFromLeaves(t *testing.T) {
	t.Parallel()
	cfg, level, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Engine
	if e.MaxPayload != engineio.DefaultMaxPayload || e.MaxQueueBytes != engineio.DefaultMaxQueueBytes ||
		e.PingInterval != engineio.DefaultPingInterval || e.PingTimeout != engineio.DefaultPingTimeout ||
		e.UpgradeTimeout != engineio.DefaultUpgradeTimeout {
		t.Errorf("engine = %+v", e)
	}
	if cfg.RedisPrefix != adapter.DefaultPrefix || cfg.RecoveryWindow != socketio.DefaultRecoveryWindow ||
		cfg.QueueRetention != queue.DefaultRetention || cfg.QueueMaxLen != queue.DefaultMaxLen ||
		cfg.DurableRoomMembers != queue.DefaultMaxMembers {
		t.Errorf("config = %+v", cfg)
	}
	if cfg.Addr != ":8080" || cfg.AdminAddr != ":9090" || cfg.DrainTimeout != 10*time.Second ||
		cfg.EventRate != 100 || cfg.Adapter != "classic" || cfg.NodeID != "" || level != "info" {
		t.Errorf("config = %+v, level %q", cfg, level)
	}
	def := gateway.DefaultConfig()
	if cfg.APITimeout != def.APITimeout || cfg.ReadHeaderTimeout != def.ReadHeaderTimeout || def.APITimeout == 0 {
		t.Errorf("timeouts %v %v, defaults %v %v", cfg.APITimeout, cfg.ReadHeaderTimeout, def.APITimeout, def.ReadHeaderTimeout)
	}
}

// sample is a valid value of each kind of setting, as YAML, other than the
// default.
func sample(s setting) (yamlValue, want string) {
	switch s.value.(type) {
	case boolValue:
		return "true", "true"
	case intValue, int64Value:
		return "1_234", "1234"
	case floatValue:
		return "2.5", "2.5"
	case durationValue:
		return "1m30s", "1m30s"
	case listValue:
		return "[/a, /b]", "/a,/b"
	default:
		return "'x:1'", "x:1"
	}
}

// TestEverySettingInFile: every setting but --config is a key of the file.
func TestEverySettingInFile(t *testing.T) {
	t.Parallel()
	for _, s := range table() {
		if s.name == "config" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			val, want := sample(s)
			file := writeFile(t, s.name+": "+val+"\n")
			o := defaultOptions()
			tb := settings(&o)
			if err := readFile(file, tb, map[string]bool{}); err != nil {
				t.Fatal(err)
			}
			for _, got := range tb {
				if got.name == s.name && got.value.String() != want {
					t.Fatalf("%s = %q, want %q", s.name, got.value.String(), want)
				}
			}
		})
	}
}

func TestFileSetsFlags(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `
addr: 127.0.0.1:7
max-payload: 2048
demo: true
origins: [https://a.example, https://b.example]
durable-rooms: "team:*, orders:*"
recovery-window: 90s
api-timeout: 3s
log-level: debug
namespaces: [/chat, /admin]
namespace-webhooks: [/chat=http://chat-backend/hook]
`)
	cfg, level, err := parseConfig([]string{"--config", file, "--allow-anonymous"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:7" || cfg.Engine.MaxPayload != 2048 || !cfg.Demo || cfg.RecoveryWindow != 90*time.Second ||
		cfg.APITimeout != 3*time.Second || level != "debug" || !cfg.AllowAnonymous {
		t.Fatalf("config = %+v level %q", cfg, level)
	}
	if !slices.Equal(cfg.Origins, []string{"https://a.example", "https://b.example"}) ||
		!slices.Equal(cfg.DurableRooms, []string{"team:*", "orders:*"}) ||
		!slices.Equal(cfg.Namespaces, []string{"/chat", "/admin"}) {
		t.Fatalf("lists = %q %q %q", cfg.Origins, cfg.DurableRooms, cfg.Namespaces)
	}
	// A namespace's webhook, as docs/HOOKS.md writes it in the file.
	if !slices.Equal(cfg.NamespaceWebhooks, []string{"/chat=http://chat-backend/hook"}) {
		t.Fatalf("namespace-webhooks = %q", cfg.NamespaceWebhooks)
	}
	// The file can be named by the environment too.
	cfg, _, err = parseConfig(nil, env(map[string]string{"ROOMCAST_CONFIG": file}), io.Discard)
	if err != nil || cfg.Addr != "127.0.0.1:7" {
		t.Fatalf("config = %+v, %v", cfg, err)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "drain-timeout: 1s\nevent-rate: 7\nqueue-maxlen: 5\n")
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		drain time.Duration
	}{
		{"file beats default", nil, nil, time.Second},
		{"env beats file", nil, map[string]string{"ROOMCAST_DRAIN_TIMEOUT": "2s"}, 2 * time.Second},
		{"empty env is unset", nil, map[string]string{"ROOMCAST_DRAIN_TIMEOUT": ""}, time.Second},
		{"flag beats env", []string{"--drain-timeout", "3s"}, map[string]string{"ROOMCAST_DRAIN_TIMEOUT": "2s"}, 3 * time.Second},
		{"flag beats file", []string{"--drain-timeout=3s"}, nil, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _, err := parseConfig(append([]string{"--config", file}, tt.args...), env(tt.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.DrainTimeout != tt.drain {
				t.Fatalf("drain timeout = %v, want %v", cfg.DrainTimeout, tt.drain)
			}
			// The file's other keys apply whatever set drain-timeout.
			if cfg.EventRate != 7 || cfg.QueueMaxLen != 5 {
				t.Fatalf("config = %+v", cfg)
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, want string }{
		{"unknown key", "addr: :1\nnamespacez: [/x]\n", `unknown key "namespacez"`},
		{"config in the file", "config: other.yaml\n", `unknown key "config"`},
		{"twice", "addr: :1\naddr: :2\n", `"addr" set twice`},
		{"list for a single value", "addr: [a, b]\n", "not a list"},
		{"mapping", "origins: {a: b}\n", "want a value"},
		{"bad duration", "drain-timeout: soon\n", "drain-timeout: parse error"},
		{"bad number", "queue-maxlen: many\n", "queue-maxlen: invalid syntax"},
		{"not a mapping", "- addr\n", "want a mapping"},
		{"not YAML", "addr: [\n", "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := parseConfig([]string{"--config", writeFile(t, tt.body)}, env(nil), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	// An empty file, and a key left empty, change nothing.
	for _, body := range []string{"", "addr:\n"} {
		cfg, _, err := parseConfig([]string{"--config", writeFile(t, body)}, env(nil), io.Discard)
		if err != nil || cfg.Addr != ":8080" {
			t.Fatalf("%q: config = %+v, %v", body, cfg, err)
		}
	}
}

// TestHelpListsEverySetting: --help is generated from the table, with each
// setting's variable and default.
func TestHelpListsEverySetting(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, _, err := parseConfig([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	help := out.String()
	for _, s := range table() {
		line := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(s.name) + `( [a-z]+)?\n\s+\t.*\(` + s.envName() + `[;)]`)
		if !line.MatchString(help) {
			t.Errorf("--help does not list --%s with %s:\n%s", s.name, s.envName(), help)
		}
	}
	for _, want := range []string{`default ":8080"`, "default 1000000", "default 2m)", "default 24h)", `default "socket.io"`,
		" -redis string\n", // scripts/cluster.sh looks for " -redis "
	} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

var docBlock = regexp.MustCompile(`(?s)(<!-- settings:([a-z]+) \(generated by cmd/gateway; go test ./cmd/gateway -update\) -->\n)(.*?)(<!-- end settings -->)`)

// TestOperationsDoc: the settings tables of docs/OPERATIONS.md are the
// table's. Run `go test ./cmd/gateway -run TestOperationsDoc -update` after
// changing a setting.
func TestOperationsDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "OPERATIONS.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Documented defaults are the defaults, not whatever this machine's
	// environment would make them.
	o := defaultOptions()
	tb := settings(&o)
	groups := map[string]bool{}
	doc := docBlock.ReplaceAllStringFunc(string(raw), func(block string) string {
		m := docBlock.FindStringSubmatch(block)
		groups[m[2]] = true
		return m[1] + markdownTable(tb, m[2]) + m[4]
	})
	for g := range groupTitles {
		if !groups[g] {
			t.Errorf("docs/OPERATIONS.md has no table of the %q settings", g)
		}
	}
	if doc == string(raw) {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/OPERATIONS.md's settings tables differ from the settings table; run go test ./cmd/gateway -run TestOperationsDoc -update")
}
