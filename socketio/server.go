package socketio

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/metrics"
)

// Defaults of the settings left zero, for programs that show or document
// their settings (cmd/gateway).
const (
	// DefaultConnectTimeout is Config.ConnectTimeout's default.
	DefaultConnectTimeout = 45 * time.Second
	// DefaultRecoveryWindow is Recovery.Window's default.
	DefaultRecoveryWindow = 2 * time.Minute
)

// Config configures a Server. The zero value is a working single-node server.
type Config struct {
	// Engine configures the Engine.IO layer; its OnConnection is set by the
	// Server and must be nil.
	Engine engineio.Config
	// ConnectTimeout bounds the time between the Engine.IO handshake and the
	// first namespace CONNECT. Defaults to 45s.
	ConnectTimeout time.Duration
	// Adapter creates the adapter of each namespace. Defaults to
	// adapter.MemoryFactory with Node and Metrics.
	Adapter adapter.Factory
	// Node names this node. Defaults to "local".
	Node string
	// Metrics records connections, packets and disconnects. Defaults to none.
	Metrics *metrics.Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Recovery turns on connection state recovery and durable delivery
	// (nil: off, as the compliance suite expects).
	Recovery *Recovery
}

// Server is a Socket.IO server: an http.Handler for the "/socket.io/" path
// and the root of the namespaces.
type Server struct {
	cfg    Config
	engine *engineio.Server
	log    *slog.Logger
	ext    extension // recovery with Config.Recovery, plain otherwise

	mu         sync.RWMutex
	namespaces map[string]*Namespace
	closing    bool

	wg sync.WaitGroup // socket cleanups, Socket.Go, sessions stored at disconnect
}

// New returns a Server with the main namespace "/" created.
func New(cfg Config) (*Server, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Node == "" {
		cfg.Node = "local"
	}
	if cfg.Adapter == nil {
		cfg.Adapter = adapter.MemoryFactory(adapter.MemoryConfig{Node: cfg.Node, Metrics: cfg.Metrics})
	}
	if cfg.Engine.OnConnection != nil {
		return nil, fmt.Errorf("socketio: Engine.OnConnection is set by the server")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, namespaces: make(map[string]*Namespace), ext: plain{}}
	if cfg.Recovery != nil {
		rec, err := newRecovery(s, *cfg.Recovery)
		if err != nil {
			return nil, err
		}
		s.ext = rec
	}
	ecfg := cfg.Engine
	if ecfg.Logger == nil {
		ecfg.Logger = cfg.Logger
	}
	ecfg.OnConnection = s.onEngineConn
	eng, err := engineio.New(ecfg)
	if err != nil {
		return nil, err
	}
	s.engine = eng
	if _, err := s.Of("/"); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHandover serves a websocket upgrade for polling session sid, which
// another node holds, by taking the session and its sockets over from it
// (engineio.Server.ServeHandover; handover.go). It reports false, having
// written nothing, when that node does not hand sessions over.
func (s *Server) ServeHandover(w http.ResponseWriter, r *http.Request, sid string, src engineio.HandoverSource) bool {
	return s.engine.ServeHandover(w, r, sid, src)
}

// ServeHTTP serves the Engine.IO endpoint; mount it at "/socket.io/".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.engine.ServeHTTP(w, r)
}

// Of returns the namespace name, creating it (and its adapter) on first use.
func (s *Server) Of(name string) (*Namespace, error) {
	if name == "" || name[0] != '/' {
		name = "/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.namespaces[name]; ok {
		return n, nil
	}
	n := newNamespace(s, name)
	a, err := s.cfg.Adapter(n)
	if err != nil {
		return nil, fmt.Errorf("namespace %q: %w", name, err)
	}
	n.adapter = a
	s.namespaces[name] = n
	return n, nil
}

// Sockets returns the main namespace "/".
func (s *Server) Sockets() *Namespace {
	n, _ := s.Namespace("/")
	return n
}

// Namespace returns an existing namespace.
func (s *Server) Namespace(name string) (*Namespace, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.namespaces[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNamespace, name)
	}
	return n, nil
}

// Namespaces returns every namespace.
func (s *Server) Namespaces() []*Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Namespace, 0, len(s.namespaces))
	for _, n := range s.namespaces {
		out = append(out, n)
	}
	return out
}

// Node returns this node's name.
func (s *Server) Node() string { return s.cfg.Node }

// ConnCount returns the number of open Engine.IO connections.
func (s *Server) ConnCount() int { return s.engine.Count() }

// Shutdown stops accepting connections and closes every open one, flushing
// what is queued, so the official client reconnects elsewhere ("transport
// close"). It returns when every connection is gone or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	err := s.engine.Shutdown(ctx)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	s.ext.close()
	for _, n := range s.Namespaces() {
		if cerr := n.adapter.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

func (s *Server) lookup(name string) (*Namespace, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.namespaces[name]
	return n, ok
}

func (s *Server) onEngineConn(conn *engineio.Conn) {
	newClient(s, conn)
}
