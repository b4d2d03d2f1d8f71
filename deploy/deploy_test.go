package deploy

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/ratelimit"
	"gopkg.in/yaml.v3"
)

// ---------------------------------------------------------------- compose

type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	DependsOn   yaml.Node         `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Profiles        []string `yaml:"profiles"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	Networks        map[string]struct {
		IPv4Address string `yaml:"ipv4_address"`
	} `yaml:"networks"`
}

func loadCompose(t testing.TB) composeFile {
	t.Helper()
	var c composeFile
	readYAML(t, "docker-compose.yml", &c)
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return c
}

// dependsOn lists the services s depends on, in either compose syntax.
func (s composeService) dependsOn() []string {
	var out []string
	switch s.DependsOn.Kind {
	case yaml.SequenceNode:
		for _, n := range s.DependsOn.Content {
			out = append(out, n.Value)
		}
	case yaml.MappingNode:
		for i := 0; i < len(s.DependsOn.Content); i += 2 {
			out = append(out, s.DependsOn.Content[i].Value)
		}
	}
	return out
}

var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}`)

// interpolate resolves ${VAR:-default} the way compose does with VAR unset.
func interpolate(s string) string {
	return composeVar.ReplaceAllString(s, "$2")
}

// mount splits a short-syntax volume into source and target.
func mount(v string) (src, dst string) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 {
		return "", parts[0]
	}
	return parts[0], parts[1]
}

func isBindMount(src string) bool {
	return strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/")
}

// targetOf returns the container path where s mounts the deploy/ file or
// directory rel ("./haproxy.cfg"), or "".
func (s composeService) targetOf(rel string) string {
	for _, v := range s.Volumes {
		if src, dst := mount(v); path.Clean(src) == path.Clean(rel) {
			return dst
		}
	}
	return ""
}

var gatewayServices = []string{"gateway-1", "gateway-2", "gateway-3"}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	for _, name := range []string{"redis", "gateway-1", "gateway-2", "gateway-3", "haproxy", "prometheus", "grafana", "k6"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %q missing", name)
		}
	}
	for name, s := range c.Services {
		for _, dep := range s.dependsOn() {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %q", name, dep)
			}
		}
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s has neither image nor build", name)
		}
		for _, v := range s.Volumes {
			src, _ := mount(v)
			if src != "" && !isBindMount(src) {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s uses named volume %q that is not declared", name, src)
				}
			}
		}
	}

	t.Run("redis", func(t *testing.T) {
		r := c.Services["redis"]
		if !strings.HasPrefix(r.Image, "redis:7") {
			t.Errorf("redis image %q, want redis:7", r.Image)
		}
		cmd := strings.Join(r.Command, " ")
		for _, want := range []string{"--appendonly yes", "--appendfsync everysec"} {
			if !strings.Contains(cmd, want) {
				t.Errorf("redis command %q lacks %q (AOF must be on)", cmd, want)
			}
		}
		if !slices.ContainsFunc(r.Volumes, func(v string) bool { src, dst := mount(v); return dst == "/data" && !isBindMount(src) }) {
			t.Errorf("redis volumes %v: want a named volume on /data", r.Volumes)
		}
		if r.Healthcheck == nil || len(r.Healthcheck.Test) == 0 {
			t.Error("redis has no healthcheck (the gateways wait for it)")
		}
	})

	for _, name := range gatewayServices {
		t.Run(name, func(t *testing.T) {
			g := c.Services[name]
			if g.Build == nil {
				t.Fatal("no build section")
			}
			ctx := filepath.Join(".", g.Build.Context)
			if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
				t.Errorf("build context %q is not the repository root: %v", g.Build.Context, err)
			}
			if df := filepath.Join(ctx, g.Build.Dockerfile); filepath.Clean(df) != filepath.Clean(filepath.Join("..", "deploy", "Dockerfile")) {
				t.Errorf("dockerfile %q, want deploy/Dockerfile", g.Build.Dockerfile)
			} else if _, err := os.Stat(df); err != nil {
				t.Error(err)
			}
			env := g.Environment
			if env["ROOMCAST_NODE_ID"] != name {
				t.Errorf("ROOMCAST_NODE_ID = %q, want %q", env["ROOMCAST_NODE_ID"], name)
			}
			// HAProxy is round-robin: a node forwards polling requests to
			// the session's node at that node's cluster URL.
			cu, err := url.Parse(interpolate(env["ROOMCAST_CLUSTER_URL"]))
			if err != nil || cu.Scheme != "http" || cu.Hostname() != name || cu.Port() != strings.TrimPrefix(interpolate(env["ROOMCAST_ADDR"]), ":") {
				t.Errorf("ROOMCAST_CLUSTER_URL = %q, want http://%s plus the port of ROOMCAST_ADDR", env["ROOMCAST_CLUSTER_URL"], name)
			}
			u, err := url.Parse(interpolate(env["ROOMCAST_REDIS"]))
			if err != nil || u.Scheme != "redis" || u.Hostname() != "redis" {
				t.Errorf("ROOMCAST_REDIS = %q, want redis://redis:6379", env["ROOMCAST_REDIS"])
			}
			if interpolate(env["ROOMCAST_ORIGINS"]) == "" {
				t.Error("ROOMCAST_ORIGINS is empty; it is required with Redis")
			}
			for _, k := range []string{"ROOMCAST_JWT_SECRET", "ROOMCAST_API_TOKEN", "ROOMCAST_ADMIN_ADDR", "ROOMCAST_ADDR"} {
				if interpolate(env[k]) == "" {
					t.Errorf("%s is empty", k)
				}
			}
			if g.Healthcheck == nil || !strings.Contains(strings.Join(g.Healthcheck.Test, " "), "/readyz") {
				t.Errorf("healthcheck must probe /readyz, got %+v", g.Healthcheck)
			}
			if !slices.Contains(g.dependsOn(), "redis") {
				t.Error("gateway does not depend on redis")
			}
			grace, err := time.ParseDuration(g.StopGracePeriod)
			drain, derr := time.ParseDuration(interpolate(env["ROOMCAST_DRAIN_TIMEOUT"]))
			if err != nil || derr != nil || grace <= drain {
				t.Errorf("stop_grace_period %q must exceed ROOMCAST_DRAIN_TIMEOUT %q", g.StopGracePeriod, env["ROOMCAST_DRAIN_TIMEOUT"])
			}
		})
	}

	// The gateways run as production would: JWT required, the API behind
	// a token, X-Forwarded-For believed from HAProxy alone.
	t.Run("production auth and client IPs", func(t *testing.T) {
		var subnet netip.Prefix
		if n, ok := c.Networks["default"]; !ok || len(n.IPAM.Config) != 1 {
			t.Fatalf("networks.default must pin one subnet (HAProxy's address is trusted): %+v", c.Networks)
		} else if p, err := netip.ParsePrefix(interpolate(n.IPAM.Config[0].Subnet)); err != nil {
			t.Fatalf("subnet %q: %v", n.IPAM.Config[0].Subnet, err)
		} else {
			subnet = p
		}
		lbIP, err := netip.ParseAddr(interpolate(c.Services["haproxy"].Networks["default"].IPv4Address))
		if err != nil || !subnet.Contains(lbIP) {
			t.Fatalf("haproxy ipv4_address %q must be fixed, in %s: %v", c.Services["haproxy"].Networks["default"].IPv4Address, subnet, err)
		}
		for _, name := range gatewayServices {
			env := c.Services[name].Environment
			if v := interpolate(env["ROOMCAST_ALLOW_ANONYMOUS"]); v != "" && v != "false" {
				t.Errorf("%s: ROOMCAST_ALLOW_ANONYMOUS=%q; the compose file runs with JWT only", name, v)
			}
			if !strings.Contains(env["ROOMCAST_JWT_SECRET"], "${JWT_SECRET") || interpolate(env["ROOMCAST_JWT_SECRET"]) == "" {
				t.Errorf("%s: ROOMCAST_JWT_SECRET %q must come from JWT_SECRET with a dev default", name, env["ROOMCAST_JWT_SECRET"])
			}
			if !strings.Contains(env["ROOMCAST_API_TOKEN"], "${API_TOKEN") || interpolate(env["ROOMCAST_API_TOKEN"]) == "" {
				t.Errorf("%s: ROOMCAST_API_TOKEN %q must come from API_TOKEN with a dev default", name, env["ROOMCAST_API_TOKEN"])
			}
			trusted, err := ratelimit.ParsePrefixes(interpolate(env["ROOMCAST_TRUSTED_PROXIES"]))
			if err != nil || len(trusted) == 0 {
				t.Errorf("%s: ROOMCAST_TRUSTED_PROXIES %q: %v", name, env["ROOMCAST_TRUSTED_PROXIES"], err)
				continue
			}
			for _, p := range trusted {
				if !p.Contains(lbIP) || p.Bits() != lbIP.BitLen() {
					t.Errorf("%s: trusted proxy %s is not HAProxy's address %s alone", name, p, lbIP)
				}
			}
		}
		hasForwardFor := false
		for _, l := range haproxySections(t)["defaults"] {
			hasForwardFor = hasForwardFor || l == "option forwardfor"
		}
		if !hasForwardFor {
			t.Error("haproxy.cfg defaults lack option forwardfor: the gateways would see HAProxy as every client")
		}
	})

	t.Run("haproxy", func(t *testing.T) {
		h := c.Services["haproxy"]
		if h.targetOf("./haproxy.cfg") != "/usr/local/etc/haproxy/haproxy.cfg" {
			t.Errorf("haproxy.cfg is not mounted where the haproxy image reads it: %v", h.Volumes)
		}
		for _, p := range []string{"8080:8080", "8404:8404"} {
			if !slices.Contains(h.Ports, p) {
				t.Errorf("haproxy ports %v lack %s", h.Ports, p)
			}
		}
	})

	t.Run("k6", func(t *testing.T) {
		k := c.Services["k6"]
		if !strings.HasPrefix(k.Image, "grafana/k6") {
			t.Errorf("k6 image %q", k.Image)
		}
		if !slices.Contains(k.Profiles, "loadtest") {
			t.Errorf("k6 profiles %v: want loadtest so it does not start by default", k.Profiles)
		}
		for _, v := range []string{"TARGET", "JWT_SECRET", "VUS", "DURATION", "ROOMS", "RATE"} {
			if interpolate(k.Environment[v]) == "" {
				t.Errorf("k6 env %s unset", v)
			}
		}
		target, err := url.Parse(k.Environment["TARGET"])
		if err != nil || target.Hostname() != "haproxy" {
			t.Errorf("k6 TARGET %q must point at the haproxy service", k.Environment["TARGET"])
		}
		if gw := c.Services["gateway-1"].Environment["ROOMCAST_JWT_SECRET"]; k.Environment["JWT_SECRET"] != gw {
			t.Errorf("k6 JWT_SECRET %q differs from the gateways' %q", k.Environment["JWT_SECRET"], gw)
		}
		dst := k.targetOf("../loadtest")
		script := ""
		for _, a := range k.Command {
			if strings.HasSuffix(a, ".js") {
				script = a
			}
		}
		if dst == "" || !strings.HasPrefix(script, dst+"/") {
			t.Fatalf("k6 runs %q but mounts ../loadtest at %q", script, dst)
		}
		if rel := strings.TrimPrefix(script, dst+"/"); rel != "socketio.js" {
			t.Errorf("k6 runs %s, want loadtest/socketio.js", rel)
		} else if _, err := os.Stat(filepath.Join("..", "loadtest", rel)); err != nil {
			t.Errorf("k6 script: %v", err)
		}
	})
}

// TestComposeMountsExist: every file or directory a service bind-mounts is in the repository.
func TestComposeMountsExist(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	n := 0
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _ := mount(v)
			if !isBindMount(src) {
				continue
			}
			n++
			if _, err := os.Stat(src); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			}
		}
	}
	if n < 6 {
		t.Errorf("only %d bind mounts found; the parser is probably wrong", n)
	}
}

// gatewayFlags lists the gateway's flags from `gateway --help` and from
// cmd/gateway/config.go.
func gatewayFlags(t testing.TB) map[string]bool {
	t.Helper()
	flags := map[string]bool{}
	bin := buildGateway(t)
	out, _ := runErr(time.Minute, t.TempDir(), nil, bin, "--help")
	for _, m := range regexp.MustCompile(`(?m)^\s+--?([a-z0-9][a-z0-9-]*)`).FindAllStringSubmatch(out, -1) {
		flags[m[1]] = true
	}
	if len(flags) < 10 {
		t.Fatalf("gateway --help lists %d flags:\n%s", len(flags), out)
	}
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "cmd", "gateway", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\.(?:String|Bool|Int|Int64|Uint|Uint64|Float64|Duration|Func|Text)?Var\(\s*[^,]+,\s*"([a-z0-9-]+)"`).FindAllStringSubmatch(string(src), -1) {
		flags[m[1]] = true
	}
	return flags
}

// TestGatewayEnvNamesAreFlags: every ROOMCAST_X in the compose file and the
// Dockerfile names a real gateway flag --x (a typo would be silently ignored).
func TestGatewayEnvNamesAreFlags(t *testing.T) {
	t.Parallel()
	flags := gatewayFlags(t)
	var names []string
	c := loadCompose(t)
	for _, s := range c.Services {
		for k := range s.Environment {
			names = append(names, k)
		}
	}
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, regexp.MustCompile(`ROOMCAST_[A-Z0-9_]+`).FindAllString(string(df), -1)...)
	checked := 0
	for _, k := range names {
		flag, ok := strings.CutPrefix(k, "ROOMCAST_")
		if !ok {
			continue
		}
		checked++
		flag = strings.ToLower(strings.ReplaceAll(flag, "_", "-"))
		if !flags[flag] {
			t.Errorf("%s: the gateway has no --%s flag", k, flag)
		}
	}
	if checked < 10 {
		t.Errorf("checked only %d ROOMCAST_* variables", checked)
	}
}

// ---------------------------------------------------------------- Dockerfile

func TestDockerfile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(raw), " ")
	type stage struct {
		from, name string
		lines      []string
	}
	var stages []*stage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); strings.EqualFold(f[0], "FROM") {
			s := &stage{from: f[1]}
			if len(f) >= 4 && strings.EqualFold(f[2], "AS") {
				s.name = f[3]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %q", line)
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
	}
	find := func(pred func(*stage) bool) *stage {
		for _, s := range stages {
			if pred(s) {
				return s
			}
		}
		return nil
	}
	has := func(s *stage, parts ...string) bool {
		for _, l := range s.lines {
			if all(l, parts) {
				return true
			}
		}
		return false
	}

	node := find(func(s *stage) bool { return strings.HasPrefix(s.from, "node:") })
	if node == nil {
		t.Fatal("no node stage")
	}
	if !has(node, "COPY", "package.json", "package-lock.json") || !has(node, "RUN", "npm ci") {
		t.Error("node stage must copy package.json + package-lock.json and run npm ci")
	}
	if !has(node, "node_modules/socket.io-client/dist/socket.io.min.js", "demo/static/vendor/") {
		t.Error("node stage must copy socket.io.min.js to demo/static/vendor/")
	}

	build := find(func(s *stage) bool { return strings.HasPrefix(s.from, "golang:") })
	if build == nil {
		t.Fatal("no Go stage")
	}
	if !has(build, "CGO_ENABLED=0") || !has(build, "go build", "-trimpath", `-ldflags "-s -w"`, "./cmd/gateway") {
		t.Error(`Go stage must build ./cmd/gateway with CGO_ENABLED=0 -trimpath -ldflags "-s -w"`)
	}
	if !has(build, "COPY", "--from="+node.name, "demo/static/vendor/socket.io.min.js") {
		t.Error("Go stage must take the client bundle from the node stage before building (the demo embeds it)")
	}

	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final image %s, want distroless/static or scratch", final.from)
	}
	for _, want := range [][]string{
		{"COPY", "--from=" + build.name, "/usr/local/bin/gateway"},
		{"USER 65532"},
		{"EXPOSE", "8080", "9090"},
		{"ENTRYPOINT", "gateway"},
		{"HEALTHCHECK", "/readyz"},
	} {
		if !has(final, want...) {
			t.Errorf("final stage lacks %q", want)
		}
	}
	for _, f := range []string{"package.json", "package-lock.json", "go.mod", "go.sum"} {
		if _, err := os.Stat(filepath.Join("..", f)); err != nil {
			t.Errorf("the Dockerfile copies %s: %v", f, err)
		}
	}
	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"node_modules", ".git", "bin"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf("Dockerfile.dockerignore does not exclude %s", want)
		}
	}
}

func all(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestDockerfileBuildIsStatic builds the gateway with the Dockerfile's flags
// and checks the binary needs no dynamic loader (distroless/static has none).
func TestDockerfileBuildIsStatic(t *testing.T) {
	t.Parallel()
	f, err := elf.Open(buildGateway(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has a PT_INTERP segment: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary needs shared libraries %v", libs)
	}
	if syms, _ := f.Symbols(); len(syms) > 0 {
		t.Errorf("binary has %d symbols; -ldflags \"-s -w\" should strip them", len(syms))
	}
}

// ---------------------------------------------------------------- HAProxy

// loopbackHAProxyEnv is what scripts/cluster.sh sets.
func loopbackHAProxyEnv() []string {
	return []string{
		"LB_BIND=127.0.0.1:8080", "LB_STATS_BIND=127.0.0.1:8404",
		"LB_GATEWAY_1=127.0.0.1:8081", "LB_GATEWAY_2=127.0.0.1:8082", "LB_GATEWAY_3=127.0.0.1:8083",
		"LB_GATEWAY_1_ADMIN=9091", "LB_GATEWAY_2_ADMIN=9092", "LB_GATEWAY_3_ADMIN=9093",
	}
}

func TestHAProxyConfigValid(t *testing.T) {
	t.Parallel()
	haproxy := need(t, "haproxy")
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"loopback", loopbackHAProxyEnv()},
		// With no LB_* set, the compose service names are used; they do
		// not resolve here, which init-addr none allows.
		{"compose defaults", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, time.Minute, ".", tc.env, haproxy, "-c", "-f", "haproxy.cfg")
			if !strings.Contains(out, "Configuration file is valid") {
				t.Fatalf("haproxy -c:\n%s", out)
			}
			if tc.env != nil && strings.Contains(out, "WARNING") {
				t.Errorf("haproxy -c warns with loopback addresses:\n%s", out)
			}
		})
	}
	// A broken address must be refused, so the check above means something.
	env := append(loopbackHAProxyEnv(), "LB_GATEWAY_2=127.0.0.1:notaport")
	if out, err := runErr(time.Minute, ".", env, haproxy, "-c", "-f", "haproxy.cfg"); err == nil {
		t.Errorf("haproxy -c accepted a bad gateway address:\n%s", out)
	}
}

// haproxySections splits haproxy.cfg into "kind name" -> directive lines.
func haproxySections(t testing.TB) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(raw), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			cur = strings.Join(strings.Fields(line), " ")
			sections[cur] = nil
			continue
		}
		sections[cur] = append(sections[cur], strings.Join(strings.Fields(line), " "))
	}
	return sections
}

// haproxyDuration parses an HAProxy time ("60s", "1h", "500" = ms).
func haproxyDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, "ms"
	if i >= 0 {
		num, unit = s[:i], s[i:]
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, err
	}
	units := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("unit %q", unit)
	}
	return time.Duration(n) * u, nil
}

func TestHAProxyConfigRouting(t *testing.T) {
	t.Parallel()
	s := haproxySections(t)
	timeouts := map[string]time.Duration{}
	for _, l := range s["defaults"] {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "timeout" {
			d, err := haproxyDuration(f[2])
			if err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			timeouts[f[1]] = d
		}
	}
	// The gateway's defaults: ping interval 25s, ping timeout 20s.
	heartbeat := 25*time.Second + 20*time.Second
	for _, name := range []string{"client", "server"} {
		if timeouts[name] <= heartbeat {
			t.Errorf("timeout %s = %v, want above ping interval + ping timeout (%v)", name, timeouts[name], heartbeat)
		}
	}
	if timeouts["tunnel"] < time.Hour {
		t.Errorf("timeout tunnel = %v, want >= 1h", timeouts["tunnel"])
	}

	fe := strings.Join(s["frontend clients"], "\n")
	for _, want := range []string{
		"acl has_sid url_param(sid) -m found",
		"acl websocket url_param(transport) -m str websocket",
		"use_backend gateways_ws if engineio websocket !has_sid",
		"default_backend gateways",
	} {
		if !strings.Contains(fe, want) {
			t.Errorf("frontend clients lacks %q", want)
		}
	}
	free := s["backend gateways"]
	ws := s["backend gateways_ws"]
	// The gateways forward polling requests to their session's node: no
	// backend is sticky (stickiness is an optional optimisation).
	for name, lines := range map[string][]string{"gateways": free, "gateways_ws": ws} {
		if slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "stick") || l == "balance source" }) {
			t.Errorf("backend %s is sticky", name)
		}
	}
	if !slices.Contains(free, "balance roundrobin") {
		t.Error("backend gateways is not round-robin")
	}
	if !slices.Contains(ws, "balance leastconn") {
		t.Error("backend gateways_ws (direct WebSockets) is not leastconn")
	}
	if !slices.Contains(free, "http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host roomcast") {
		t.Error("backend gateways does not health-check GET /readyz")
	}
	servers := func(lines []string) (names []string) {
		for _, l := range lines {
			if f := strings.Fields(l); f[0] == "server" {
				names = append(names, f[1])
			}
		}
		return names
	}
	if got := servers(free); !slices.Equal(got, gatewayServices) {
		t.Errorf("backend gateways servers %v, want %v", got, gatewayServices)
	}
	if got := servers(ws); !slices.Equal(got, gatewayServices) {
		t.Errorf("backend gateways_ws servers %v, want %v", got, gatewayServices)
	}
}

// ---------------------------------------------------------------- Prometheus

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	promtool := need(t, "promtool")
	out := run(t, time.Minute, ".", nil, promtool, "check", "config", "prometheus.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check config:\n%s", out)
	}

	var cfg promConfig
	readYAML(t, "prometheus.yml", &cfg)
	if !slices.Contains(cfg.RuleFiles, "alerts.yml") {
		t.Errorf("rule_files %v lacks alerts.yml", cfg.RuleFiles)
	}
	c := loadCompose(t)
	var targets []string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "roomcast" {
			continue
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	var want []string
	for _, name := range gatewayServices {
		admin := interpolate(c.Services[name].Environment["ROOMCAST_ADMIN_ADDR"])
		_, port, _ := strings.Cut(admin, ":")
		want = append(want, name+":"+port)
	}
	if !slices.Equal(targets, want) {
		t.Errorf("job roomcast scrapes %v, want every gateway's admin address %v", targets, want)
	}
	// In the container, alerts.yml must sit next to prometheus.yml, where
	// the relative rule_files entry points.
	p := c.Services["prometheus"]
	cfgDst, rulesDst := p.targetOf("./prometheus.yml"), p.targetOf("./alerts.yml")
	if cfgDst == "" || rulesDst != path.Join(path.Dir(cfgDst), "alerts.yml") {
		t.Errorf("prometheus mounts prometheus.yml at %q and alerts.yml at %q", cfgDst, rulesDst)
	}
	if !slices.Contains(p.Command, "--config.file="+cfgDst) {
		t.Errorf("prometheus command %v does not load %s", p.Command, cfgDst)
	}
}

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadAlerts(t testing.TB) alertRules {
	t.Helper()
	var a alertRules
	readYAML(t, "alerts.yml", &a)
	return a
}

func TestAlertRulesCheck(t *testing.T) {
	t.Parallel()
	promtool := need(t, "promtool")
	out := run(t, time.Minute, ".", nil, promtool, "check", "rules", "alerts.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules:\n%s", out)
	}
}

// TestAlertRulesFire runs the unit tests in testdata/alerts_test.yml against
// alerts.yml (annotations removed, see that file) with `promtool test rules`.
func TestAlertRulesFire(t *testing.T) {
	t.Parallel()
	promtool := need(t, "promtool")
	var doc map[string]any
	readYAML(t, "alerts.yml", &doc)
	for _, g := range doc["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			delete(r.(map[string]any), "annotations")
		}
	}
	stripped, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), stripped, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, time.Minute, dir, nil, promtool, "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
	// Every alert has at least one case where it must fire.
	var cases struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(tests, &cases); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range cases.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, g := range loadAlerts(t).Groups {
		for _, r := range g.Rules {
			if !fires[r.Alert] {
				t.Errorf("testdata/alerts_test.yml has no case where %s fires", r.Alert)
			}
		}
	}
}

func TestAlertAnnotations(t *testing.T) {
	t.Parallel()
	a := loadAlerts(t)
	seen := map[string]bool{}
	for _, g := range a.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s has a rule without an alert name (recording rules belong elsewhere)", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.For == "" {
				t.Errorf("%s: no `for`; a single bad scrape would page", r.Alert)
			}
			for _, k := range []string{"summary", "description", "runbook"} {
				if len(strings.TrimSpace(r.Annotations[k])) < 20 {
					t.Errorf("%s: annotation %s missing or too short: %q", r.Alert, k, r.Annotations[k])
				}
			}
		}
	}
	// The situations the deployment must alert on, by the metric they watch.
	for _, want := range []struct{ what, metric string }{
		{"node down", "up"},
		{"Redis down", "roomcast_redis_errors_total"},
		{"slow consumers", "roomcast_slow_consumer_disconnects_total"},
		{"recovery failures", "roomcast_recoveries_total"},
		{"broadcast latency p99", "roomcast_broadcast_latency_seconds_bucket"},
		{"nodes count drop", "roomcast_nodes"},
	} {
		found := false
		for _, g := range a.Groups {
			for _, r := range g.Rules {
				found = found || slices.Contains(metricNames(r.Expr), want.metric)
			}
		}
		if !found {
			t.Errorf("no alert for %s (%s)", want.what, want.metric)
		}
	}
}

// ---------------------------------------------------------------- metric names

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="roomcast"} == 0`, []string{"up"}},
		{`absent(up{job="roomcast"})`, []string{"up"}},
		{`histogram_quantile(0.99, sum by (instance, le) (rate(roomcast_broadcast_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval]))) > 0.01`,
			[]string{"roomcast_broadcast_latency_seconds_bucket"}},
		{`sum by (instance) (rate(a_total{result!="recovered"}[10m])) / sum by (instance) (rate(a_total[10m])) > 0.1 and b > 1e-9`,
			[]string{"a_total", "b"}},
		{`x offset 5m + on(instance) group_left(node) y`, []string{"x", "y"}},
		{`count(up{job="a{b}"} == 1) or vector(0)`, []string{"up"}},
		{`rate(foo[5m:30s])`, []string{"foo"}},
		{`label_replace(bar, "dst", "$1", "src", "(.*)")`, []string{"bar"}},
		{`sum without (le) (baz:rate5m)`, []string{"baz:rate5m"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboard(t testing.TB) dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("grafana", "dashboards", "roomcast.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("roomcast.json: %v", err)
	}
	return d
}

// dashboardExprs returns every PromQL expression of the dashboard's panels.
func dashboardExprs(d dashboard) []string {
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

func alertExprs(a alertRules) []string {
	var out []string
	for _, g := range a.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

// TestReferencedMetricsAreExported: every metric an alert or a dashboard panel
// reads is one the gateway exports (or `up`), so no panel is silently empty.
func TestReferencedMetricsAreExported(t *testing.T) {
	t.Parallel()
	exported := exportedMetricNames(t)
	for _, src := range []struct {
		name  string
		exprs []string
	}{
		{"alerts.yml", alertExprs(loadAlerts(t))},
		{"roomcast.json", dashboardExprs(loadDashboard(t))},
	} {
		n := 0
		for _, e := range src.exprs {
			for _, m := range metricNames(e) {
				n++
				if !exported[m] {
					t.Errorf("%s: %q reads %s, which the gateway does not export", src.name, e, m)
				}
			}
		}
		if n < len(src.exprs) {
			t.Errorf("%s: found %d metric references in %d expressions", src.name, n, len(src.exprs))
		}
	}
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q", d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("templating %v: want a datasource variable and an instance query variable", vars)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the $datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
		}
	}
	// What the dashboard must show, by the metric it reads.
	used := map[string]bool{}
	for _, e := range dashboardExprs(d) {
		for _, m := range metricNames(e) {
			used[m] = true
		}
	}
	for _, m := range []string{
		"roomcast_connections", "roomcast_connects_total", "roomcast_disconnects_total",
		"roomcast_broadcasts_total", "roomcast_deliveries_total",
		"roomcast_broadcast_latency_seconds_bucket", "roomcast_redis_command_duration_seconds_bucket",
		"roomcast_redis_errors_total", "roomcast_queue_appends_total", "roomcast_queue_replayed_total",
		"roomcast_recoveries_total", "roomcast_slow_consumer_disconnects_total", "roomcast_nodes",
		"process_resident_memory_bytes", "go_goroutines",
	} {
		if !used[m] {
			t.Errorf("no panel reads %s", m)
		}
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	var ds struct {
		Datasources []struct {
			Name, Type, UID, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join("grafana", "provisioning", "datasources", "prometheus.yml"), &ds)
	c := loadCompose(t)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("datasources %+v: want one prometheus", ds.Datasources)
	}
	u, err := url.Parse(ds.Datasources[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Services[u.Hostname()]; !ok || u.Hostname() != "prometheus" || u.Port() != "9090" {
		t.Errorf("datasource URL %s, want the prometheus service's port 9090", u)
	}

	var dp struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join("grafana", "provisioning", "dashboards", "roomcast.yml"), &dp)
	g := c.Services["grafana"]
	if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers %+v", dp.Providers)
	}
	if dst := g.targetOf("./grafana/dashboards"); dst == "" || dst != dp.Providers[0].Options.Path {
		t.Errorf("grafana mounts the dashboards at %q but the provider reads %q", dst, dp.Providers[0].Options.Path)
	}
	if g.targetOf("./grafana/provisioning") != "/etc/grafana/provisioning" {
		t.Errorf("provisioning not mounted at /etc/grafana/provisioning: %v", g.Volumes)
	}
}

// ---------------------------------------------------------------- cluster.sh

func TestClusterScriptLint(t *testing.T) {
	t.Parallel()
	script := filepath.Join(repoRoot(t), "scripts", "cluster.sh")
	st, err := os.Stat(script)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&0o111 == 0 {
		t.Error("scripts/cluster.sh is not executable")
	}
	run(t, time.Minute, ".", nil, "bash", "-n", script)
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		run(t, time.Minute, ".", nil, sc, script)
	} else {
		t.Log("shellcheck not installed; only bash -n was run")
	}
	out := run(t, time.Minute, ".", nil, script, "--help")
	for _, want := range []string{"start", "stop", "REDIS_PORT", "haproxy"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster.sh --help does not mention %s", want)
		}
	}
	if out, err := runErr(time.Minute, ".", nil, script, "bogus"); err == nil {
		t.Errorf("cluster.sh bogus succeeded:\n%s", out)
	}
}

// TestClusterScriptRunsAsProduction: `make cluster` starts its gateways with
// JWT, an API token and HAProxy as the trusted proxy, never anonymous, and
// its `token` command signs what they accept.
func TestClusterScriptRunsAsProduction(t *testing.T) {
	t.Parallel()
	script := filepath.Join(repoRoot(t), "scripts", "cluster.sh")
	raw, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	start := strings.Index(body, "start_gateways() {")
	end := strings.Index(body[start:], "\n}\n")
	if start < 0 || end < 0 {
		t.Fatal("cluster.sh has no start_gateways function")
	}
	launch := body[start : start+end]
	for _, want := range []string{`--jwt-secret "$JWT_SECRET"`, `--api-token "$API_TOKEN"`, `--trusted-proxies "$HOST"`} {
		if !strings.Contains(launch, want) {
			t.Errorf("start_gateways does not pass %s:\n%s", want, launch)
		}
	}
	if strings.Contains(launch, "--allow-anonymous") {
		t.Errorf("start_gateways allows anonymous clients:\n%s", launch)
	}
	for _, want := range []string{`JWT_SECRET="${JWT_SECRET:-dev-secret}"`, `API_TOKEN="${API_TOKEN:-dev-token}"`} {
		if !strings.Contains(body, want) {
			t.Errorf("cluster.sh lacks the dev default %s", want)
		}
	}
	need(t, "openssl")
	tok := strings.TrimSpace(run(t, time.Minute, ".", []string{"JWT_SECRET=lint-secret"}, script, "token", "carol"))
	verifier, err := auth.New(auth.Config{Secret: []byte("lint-secret")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := verifier.Verify(tok)
	if err != nil || c.Subject != "carol" {
		t.Fatalf("cluster.sh token carol = %q: %v %+v", tok, err, c)
	}
	if _, err := runErr(time.Minute, ".", nil, script, "token", "bad name"); err == nil {
		t.Error("cluster.sh token accepted a user name with a space")
	}
}
