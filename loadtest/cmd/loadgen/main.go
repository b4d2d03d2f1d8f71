package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// common holds the flags every measuring mode takes.
type common struct {
	secret     string
	tokenTTL   time.Duration
	label      string
	note       string
	server     string
	nodes      int
	setup      string
	out        string
	cpuprofile string
	timeout    time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.secret, "jwt-secret", os.Getenv("JWT_SECRET"), "HS256 secret to mint client tokens with (env JWT_SECRET); empty sends no token")
	fs.DurationVar(&c.tokenTTL, "token-ttl", time.Hour, "lifetime (exp) of minted tokens")
	fs.StringVar(&c.label, "label", "", "free-form label copied into the result")
	fs.StringVar(&c.note, "note", "", "free-form note copied into the result (shown by report where a table has a note column)")
	fs.StringVar(&c.server, "server", "", "server kind copied into the result (roomcast, socketio, gosocketio, centrifugo)")
	fs.IntVar(&c.nodes, "nodes", 0, "number of server nodes, copied into the result")
	fs.StringVar(&c.setup, "setup", "", "how the server(s) were started, copied into the result")
	fs.StringVar(&c.out, "out", "", "also append the result line to this file")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write loadgen's own CPU profile to this file")
	fs.DurationVar(&c.timeout, "timeout", 0, "hard bound of the whole run (0 = derived from the other durations)")
}

func (c *common) tokens() tokens { return tokens{secret: []byte(c.secret), ttl: c.tokenTTL} }

// registerProtocol adds the -protocol flag of the modes that speak more
// than socket.io.
func registerProtocol(fs *flag.FlagSet, name *string) {
	fs.StringVar(name, "protocol", protoSocketIO, "the server's wire protocol: "+protoSocketIO+
		" (Engine.IO v4 / Socket.IO v5, Roomcast's contract) or "+protoCentrifugo+
		" (Centrifugo's JSON protocol on /connection/websocket; fanout publishes through its HTTP API)")
}

// record is one result line.
type record struct {
	Label   string `json:"label,omitempty"`
	Note    string `json:"note,omitempty"`
	Server  string `json:"server,omitempty"`
	Nodes   int    `json:"nodes,omitempty"`
	Setup   string `json:"setup,omitempty"`
	Command string `json:"command"`
	At      string `json:"at"`
	Mode    string `json:"mode"`
	// Load1 is the 1-minute load average when the run started: other work
	// on the machine skews every figure.
	Load1  float64 `json:"load1,omitempty"`
	Error  string  `json:"error,omitempty"`
	Result any     `json:"result,omitempty"`
}

const usage = `usage: loadgen <mode> [flags]

modes:
  fanout   subscribers in one room (or -rooms), publishers; deliveries/s, ratio, latency
  idle     many idle connections; server RSS per connection
  connect  connects per second with a JWT
  durable  Roomcast durable queues via the HTTP API: stored and delivered
           user-messages/s, loss check, replay of a backlog, Redis bytes/message
  report   render docs/BENCHMARKS.md from result lines

loadgen <mode> -h lists a mode's flags.
`

// run is main without os.Exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	mode := args[1]
	fs := flag.NewFlagSet("loadgen "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	var exec func(ctx context.Context) (any, error)
	var bound time.Duration

	switch mode {
	case "fanout":
		c.register(fs)
		var cfg fanoutConfig
		var targets string
		var minRatio float64
		fs.StringVar(&targets, "targets", "http://127.0.0.1:8080", "comma-separated base URLs; connections are spread over them round-robin")
		fs.IntVar(&cfg.Subscribers, "subs", 1000, "subscribers in the room")
		fs.IntVar(&cfg.Publishers, "pubs", 2, "publisher connections (not in the room)")
		fs.IntVar(&cfg.Rooms, "rooms", 1, "rooms <room>-0, <room>-1... to spread the subscribers over (subscriber i joins room (i / targets) mod rooms: every room has members on every target); each publisher rotates over them; 1 = every subscriber in -room")
		fs.Float64Var(&cfg.Rate, "rate", 0, "target deliveries/s (publishes/s × subs per room); 0 = saturation, closed loop")
		fs.IntVar(&cfg.Inflight, "inflight", 16, "saturation: publishes not yet delivered to every subscriber, at most")
		fs.IntVar(&cfg.MaxUnacked, "max-unacked", 4096, "publishes per publisher waiting for their ack, at most (centrifugo: HTTP requests in flight per publisher)")
		fs.StringVar(&cfg.Room, "room", "bench", "room name")
		fs.StringVar(&cfg.Event, "event", "m", "event name published")
		fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "load before measuring")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measurement window")
		fs.DurationVar(&cfg.Drain, "drain", 3*time.Second, "bound of the wait for the window's last deliveries")
		fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", 60*time.Second, "bound of opening every connection")
		fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 10*time.Second, "bound of one dial, CONNECT or join")
		fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 64, "connections set up at once")
		fs.IntVar(&cfg.Sources, "sources", 0, "loopback source addresses per target (127.0.0.2...)")
		fs.Float64Var(&minRatio, "min-ratio", 0, "exit 1 when the delivery ratio is below this")
		var pids, proto string
		fs.StringVar(&pids, "pids", "", "comma-separated server process ids whose CPU time over the window is reported")
		registerProtocol(fs, &proto)
		fs.StringVar(&cfg.APIKey, "api-key", os.Getenv("API_KEY"), "centrifugo: the HTTP API key publishes are sent with (env API_KEY)")
		exec = func(ctx context.Context) (any, error) {
			var err error
			if cfg.PIDs, err = parsePIDs(pids); err != nil {
				return nil, err
			}
			if cfg.Protocol, err = protocolFor(proto); err != nil {
				return nil, err
			}
			cfg.Targets = splitList(targets)
			cfg.Tokens = c.tokens()
			r, err := runFanout(ctx, cfg)
			if r == nil {
				return nil, err
			}
			if err == nil && r.DeliveryRatio < minRatio {
				return r, fmt.Errorf("delivery ratio %.6f below -min-ratio %.6f", r.DeliveryRatio, minRatio)
			}
			if err == nil && r.Expected == 0 {
				return r, errors.New("nothing was published in the window")
			}
			return r, err
		}
	case "idle":
		c.register(fs)
		var cfg idleConfig
		fs.StringVar(&cfg.Target, "target", "http://127.0.0.1:8080", "base URL")
		fs.IntVar(&cfg.Conns, "conns", 15000, "connections to open and hold")
		fs.IntVar(&cfg.PID, "pid", 0, "server process id whose VmRSS is reported (0 = none)")
		fs.IntVar(&cfg.Sources, "sources", 8, "loopback source addresses (127.0.0.2...)")
		fs.IntVar(&cfg.Concurrency, "concurrency", 200, "connections set up at once")
		fs.DurationVar(&cfg.Settle, "settle", 5*time.Second, "hold time before RSS is read")
		fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", 120*time.Second, "bound of opening every connection")
		fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 15*time.Second, "bound of one dial or CONNECT")
		var proto string
		registerProtocol(fs, &proto)
		exec = func(ctx context.Context) (any, error) {
			var err error
			if cfg.Protocol, err = protocolFor(proto); err != nil {
				return nil, err
			}
			cfg.Tokens = c.tokens()
			r, err := runIdle(ctx, cfg)
			if r == nil {
				return nil, err
			}
			return r, err
		}
	case "connect":
		c.register(fs)
		var cfg connectConfig
		fs.StringVar(&cfg.Target, "target", "http://127.0.0.1:8080", "base URL")
		fs.IntVar(&cfg.Concurrency, "concurrency", 64, "connects in progress at once")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to keep connecting")
		fs.IntVar(&cfg.Sources, "sources", 8, "loopback source addresses (127.0.0.2...)")
		fs.IntVar(&cfg.Users, "users", 1000, "distinct token subjects")
		fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 10*time.Second, "bound of one connect")
		var pids, proto string
		fs.StringVar(&pids, "pids", "", "comma-separated server process ids whose CPU time over the run is reported")
		registerProtocol(fs, &proto)
		exec = func(ctx context.Context) (any, error) {
			var err error
			if cfg.PIDs, err = parsePIDs(pids); err != nil {
				return nil, err
			}
			if cfg.Protocol, err = protocolFor(proto); err != nil {
				return nil, err
			}
			cfg.Tokens = c.tokens()
			r, err := runConnect(ctx, cfg)
			if r == nil {
				return nil, err
			}
			return r, err
		}
	case "durable":
		c.register(fs)
		var cfg durableConfig
		var targets, pids string
		fs.StringVar(&targets, "targets", "http://127.0.0.1:8080", "comma-separated gateway base URLs; subscribers are spread over them round-robin, publisher i posts to target i mod n")
		fs.StringVar(&cfg.APIToken, "api-token", os.Getenv("API_TOKEN"), "the gateways' --api-token (env API_TOKEN)")
		fs.IntVar(&cfg.Subscribers, "subs", 1000, "users, one socket each (named <user-prefix>0...)")
		fs.IntVar(&cfg.Publishers, "pubs", 8, "concurrent API publishers (closed loop: one emit in flight each)")
		fs.IntVar(&cfg.Batch, "batch", 100, "users per emit (consecutive users, round-robin)")
		fs.StringVar(&cfg.UserPrefix, "user-prefix", "u", "prefix of the user names (JWT sub)")
		fs.StringVar(&cfg.Event, "event", "m", "event name emitted")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long publishers post")
		fs.DurationVar(&cfg.Drain, "drain", 5*time.Second, "bound of the wait for the last deliveries")
		fs.IntVar(&cfg.Backlog, "backlog", 10000, "messages appended to a fresh user, then replayed to a new connection with auth.offset (0 = no replay)")
		fs.IntVar(&cfg.BacklogConcurrency, "backlog-concurrency", 16, "backlog appends posted at once")
		fs.StringVar(&cfg.RedisURL, "redis-url", "", "the gateways' Redis: its used_memory is read before and after the backlog (empty = no memory figure)")
		fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", 60*time.Second, "bound of opening every subscriber")
		fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 10*time.Second, "bound of one dial or CONNECT")
		fs.DurationVar(&cfg.APITimeout, "api-timeout", 10*time.Second, "bound of one API call")
		fs.DurationVar(&cfg.BacklogTimeout, "backlog-timeout", 60*time.Second, "bound of appending the whole backlog")
		fs.DurationVar(&cfg.ReplayTimeout, "replay-timeout", 60*time.Second, "bound of the replaying connection, dial to CONNECT reply")
		fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 64, "subscribers set up at once")
		fs.IntVar(&cfg.Sources, "sources", 0, "loopback source addresses per target (127.0.0.2...)")
		fs.StringVar(&pids, "pids", "", "comma-separated server process ids whose CPU time over the publishing window is reported")
		exec = func(ctx context.Context) (any, error) {
			var err error
			if cfg.PIDs, err = parsePIDs(pids); err != nil {
				return nil, err
			}
			cfg.Targets = splitList(targets)
			cfg.Tokens = c.tokens()
			r, err := runDurable(ctx, cfg)
			if r == nil {
				return nil, err
			}
			return r, err
		}
	case "report":
		var rc reportConfig
		fs.StringVar(&rc.Results, "results", "", "file of result lines (JSON, one per line)")
		fs.StringVar(&rc.Out, "out", "docs/BENCHMARKS.md", "markdown file to rewrite (its hand-written section is kept)")
		fs.StringVar(&rc.Command, "command", "", "the command that produced the results (shown in the document)")
		fs.StringVar(&rc.NodeVersion, "node-version", "", "node version to show (default: node --version)")
		if err := fs.Parse(args[2:]); err != nil {
			return 2
		}
		if err := writeReport(rc); err != nil {
			fmt.Fprintln(stderr, "loadgen report:", err)
			return 1
		}
		return 0
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "loadgen: unknown mode %q\n\n%s", mode, usage)
		return 2
	}
	if err := fs.Parse(args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen %s: unexpected arguments %q\n", mode, fs.Args())
		return 2
	}
	if c.timeout > 0 {
		bound = c.timeout
	} else {
		bound = derivedBound(mode, fs)
	}

	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, bound, fmt.Errorf("run exceeded its bound of %v", bound))
	defer cancel()
	// Shutdown itself is bounded too: if it hangs, the process ends anyway.
	watchdog := time.AfterFunc(bound+30*time.Second, func() {
		fmt.Fprintf(stderr, "loadgen %s: still running %v after its bound; exiting\n", mode, 30*time.Second)
		os.Exit(3)
	})
	defer watchdog.Stop()

	load1 := loadAverage()
	res, err := exec(ctx)
	rec := record{
		Load1: load1,
		Label: c.label, Note: c.note, Server: c.server, Nodes: c.nodes, Setup: c.setup,
		Command: shellJoin(stripMeta(args)), At: time.Now().UTC().Format(time.RFC3339), Mode: mode, Result: res,
	}
	if err != nil {
		rec.Error = err.Error()
	}
	code := 0
	line, jerr := json.Marshal(rec)
	if jerr != nil {
		fmt.Fprintln(stderr, "loadgen:", jerr)
		return 1
	}
	line = append(line, '\n')
	_, _ = stdout.Write(line)
	if c.out != "" {
		if werr := appendFile(c.out, line); werr != nil {
			fmt.Fprintln(stderr, "loadgen:", werr)
			code = 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadgen %s: %v\n", mode, err)
		return 1
	}
	return code
}

// derivedBound is a mode's hard time bound from its parsed flags.
func derivedBound(mode string, fs *flag.FlagSet) time.Duration {
	dur := func(name string) time.Duration {
		if f := fs.Lookup(name); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				if d, ok := g.Get().(time.Duration); ok {
					return d
				}
			}
		}
		return 0
	}
	switch mode {
	case "fanout":
		return dur("setup-timeout") + dur("warmup") + dur("duration") + dur("drain") + time.Minute
	case "idle":
		return dur("setup-timeout") + dur("settle") + time.Minute
	case "durable":
		return dur("setup-timeout") + dur("duration") + dur("api-timeout") + dur("drain") +
			dur("backlog-timeout") + dur("replay-timeout") + time.Minute
	default:
		return dur("duration") + dur("handshake-timeout") + time.Minute
	}
}

// loadAverage returns the 1-minute load average, 0 when unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func appendFile(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// metaFlags only annotate a result; stripMeta leaves them out of the
// command recorded with it, which stays a command that reproduces the run.
var metaFlags = map[string]bool{"label": true, "note": true, "server": true, "nodes": true, "setup": true, "out": true}

func stripMeta(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(a, "-")
		if i < 2 || len(a) == len(name) || a == "--" {
			out = append(out, a)
			continue
		}
		if n, _, hasValue := strings.Cut(name, "="); metaFlags[n] {
			if !hasValue {
				i++ // skip the value too
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

// shellJoin quotes args for a POSIX shell.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%", r))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
