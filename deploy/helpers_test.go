package deploy

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/roomcast/roomcast/metrics"
	"gopkg.in/yaml.v3"
)

// repoRoot is the repository root: tests run in deploy/.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

// need skips t when the command is not installed.
func need(t testing.TB, cmd string) string {
	t.Helper()
	path, err := exec.LookPath(cmd)
	if err != nil {
		t.Skipf("%s is not installed (scripts/install-deps.sh installs it): %v", cmd, err)
	}
	return path
}

// run runs name with args in dir and returns its combined output; it fails t
// when the command fails.
func run(t testing.TB, timeout time.Duration, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(timeout, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// buildGateway builds cmd/gateway the way deploy/Dockerfile does (static,
// trimmed, stripped) into a temporary directory and returns the binary's path.
func buildGateway(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gateway")
	run(t, 5*time.Minute, repoRoot(t), []string{"CGO_ENABLED=0"},
		"go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/gateway")
	return bin
}

// readYAML decodes a YAML file of deploy/ into v.
func readYAML(t testing.TB, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// freePorts returns n distinct loopback TCP ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// ---------------------------------------------------------------- metric names

// exportedMetricNames lists every sample name the gateway's metric families
// can produce: metrics.New with the process collectors, as the gateway builds
// it, gathered (histograms and summaries expanded to _bucket/_sum/_count), plus
// the names of families that have no sample until a label value is used,
// taken from their descriptors. Prometheus' own `up` is added.
func exportedMetricNames(t testing.TB) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec := &recordingRegisterer{Registerer: reg}
	if _, err := metrics.New(rec, metrics.Options{ProcessCollectors: true}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true}
	add := func(name string, histogram, summary bool) {
		switch {
		case histogram:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case summary:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	for _, mf := range mfs {
		add(mf.GetName(), mf.GetType() == dto.MetricType_HISTOGRAM, mf.GetType() == dto.MetricType_SUMMARY)
	}
	// Plain metrics and the runtime collectors always have samples; a vector
	// has none until a label value is used, so its name comes from its Desc.
	fqName := regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)
	for _, c := range rec.collectors {
		var hist, sum bool
		switch c.(type) {
		case *prometheus.HistogramVec:
			hist = true
		case *prometheus.SummaryVec:
			sum = true
		case *prometheus.CounterVec, *prometheus.GaugeVec:
		default:
			continue
		}
		ch := make(chan *prometheus.Desc, 4)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fqName.FindStringSubmatch(d.String()); m != nil {
				add(m[1], hist, sum)
			}
		}
	}
	return names
}

// recordingRegisterer remembers what metrics.New registers.
type recordingRegisterer struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registerer.Register(c)
}

var (
	// Grouping clauses carry label names, not metrics.
	promqlGrouping = regexp.MustCompile(`(?i)\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlKeywords = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true,
		"offset": true, "atan2": true, "inf": true, "nan": true,
	}
)

// metricNames returns the metric names a PromQL expression selects (sorted,
// unique): what is left once strings, label matchers, range and subquery
// brackets, grouping clauses, numbers, Grafana variables, keywords and
// function or aggregation names are taken out.
func metricNames(expr string) []string {
	var b strings.Builder
	var quote rune
	braces, brackets := 0, 0
	escaped := false
	for _, r := range expr {
		switch {
		case quote != 0:
			if escaped {
				escaped = false
			} else if r == '\\' {
				escaped = true
			} else if r == quote {
				quote = 0
			}
			continue
		case r == '"' || r == '\'' || r == '`':
			quote = r
			continue
		case r == '{':
			braces++
			continue
		case r == '}':
			braces--
			b.WriteByte(' ')
			continue
		case r == '[':
			brackets++
			continue
		case r == ']':
			brackets--
			b.WriteByte(' ')
			continue
		}
		if braces == 0 && brackets == 0 {
			b.WriteRune(r)
		}
	}
	s := promqlGrouping.ReplaceAllString(b.String(), " ")
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	var names []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c == '.':
			// A number (1e-9, 0.5, 0x1f) or a duration (5m).
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case c == '$':
			// A Grafana variable ($instance, $__rate_interval).
			i++
			for i < len(s) && isIdent(s[i]) {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdent(s[i]) {
				i++
			}
			word := s[start:i]
			rest := strings.TrimLeft(s[i:], " \t\n")
			if promqlKeywords[strings.ToLower(word)] || strings.HasPrefix(rest, "(") {
				continue
			}
			names = append(names, word)
		default:
			i++
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
