package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ServerBin and CLIBin are the programs used; $REDIS_SERVER and $REDIS_CLI
// override them.
var (
	ServerBin = envOr("REDIS_SERVER", "redis-server")
	CLIBin    = envOr("REDIS_CLI", "redis-cli")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// startTimeout bounds the wait for a server to answer PING.
const startTimeout = 10 * time.Second

// Server is a redis-server process the test started. Its methods are safe
// for concurrent use.
type Server struct {
	t    testing.TB
	port int
	dir  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited and been reaped
}

// Start starts a standalone redis-server on a free loopback port, with no
// persistence (--save "" --appendonly no) unless args say otherwise, its
// files in a t.TempDir(). It is stopped by t.Cleanup. The test is skipped
// when redis-server is not installed.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, nil, args)
}

func start(t testing.TB, busPort func() int, extra []string) *Server {
	t.Helper()
	if _, err := exec.LookPath(ServerBin); err != nil {
		t.Skipf("redistest: %s not found (apt-get install redis-server)", ServerBin)
	}
	var lastErr error
	for range 5 { // a port found free may be taken before redis binds it
		port := FreePort(t)
		dir := t.TempDir()
		args := []string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--dir", dir,
			"--logfile", filepath.Join(dir, "redis.log"),
			"--daemonize", "no",
			"--protected-mode", "no",
			"--save", "",
			"--appendonly", "no",
		}
		if busPort != nil {
			args = append(args, "--cluster-port", strconv.Itoa(busPort()))
		}
		args = append(args, extra...)
		s := &Server{t: t, port: port, dir: dir, args: args}
		if lastErr = s.launch(); lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// launch starts the process and waits until it answers PING.
func (s *Server) launch() error {
	cmd := exec.Command(ServerBin, s.args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	// The reaper ends when the process does; Kill (and t.Cleanup) make sure
	// it does.
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		if err := ping(s.Addr()); err == nil {
			s.mu.Lock()
			s.cmd, s.done = cmd, done
			s.mu.Unlock()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited (%v): %s %s", waitErr, out.String(), s.log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on port %d did not answer within %v: %s", s.port, startTimeout, s.log())
		}
	}
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Addr returns "127.0.0.1:<port>".
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL returns "redis://127.0.0.1:<port>".
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Port returns the server's port.
func (s *Server) Port() int { return s.port }

// Kill stops the server with SIGKILL and waits for it to exit: clients see
// their connections reset, as when Redis crashes.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same port (killing it first if it
// runs) and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for range 50 { // the port can take a moment to be free again
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart redis-server: %v", err)
}

// Running reports whether the process is up (it was not killed).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

func (s *Server) stop() { s.Kill() }

// Do sends one command with redis-cli and returns its output, trimmed.
func (s *Server) Do(args ...string) (string, error) {
	out, err := exec.Command(CLIBin, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port)}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago
// (never 6379).
func FreePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if port != 6379 && port != 16379 {
			return port
		}
	}
}

// Cluster is a Redis Cluster of three masters (no replicas).
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts three cluster-enabled redis-servers, joins them with
// `redis-cli --cluster create ... --cluster-yes` and waits until every node
// reports cluster_state:ok. Everything is stopped by t.Cleanup.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if _, err := exec.LookPath(CLIBin); err != nil {
		t.Skipf("redistest: %s not found", CLIBin)
	}
	c := &Cluster{}
	for range 3 {
		c.Nodes = append(c.Nodes, start(t, func() int { return FreePort(t) }, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000",
		}))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(CLIBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, _ := n.Do("cluster", "info")
			if strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") &&
				strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ok on %s:\n%s", n.Addr(), info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Addrs returns the masters' addresses.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}
