package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/demo"
	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/clock"
	"github.com/roomcast/roomcast/metrics"
	"github.com/roomcast/roomcast/presence"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/redisqueue"
	"github.com/roomcast/roomcast/socketio"
)

// Gateway is one Roomcast node in gateway mode.
type Gateway struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	verifier *auth.Verifier
	keySet   *auth.KeySet // --jwks-url; nil without
	sio      *socketio.Server
	cluster  cluster // nil on a single node
	rdb      redis.UniversalClient
	store    queue.Store      // per-user queues, sessions, durable rooms
	blog     broadcastlog.Log // broadcasts, for recovery and history
	limits   *limits          // rate limits and connection caps
	budget   durableBudget    // --durable-budget; nil when off
	presence presence.Store   // rooms' members; Redis with --redis
	tracker  *presenceTracker // the connected sockets' rooms, into presence

	lifeMu    sync.Mutex
	lifecycle []presence.Listener     // OnLifecycle
	hooks     *hooks                  // the backend's hooks (hooks.go); nil without
	lifeHook  *lifecycleDispatcher    // --lifecycle-hook (lifecycle_hook.go); nil without
	idem      idemRecord              // answers by idempotency key (idempotency.go)
	fwd       *forwarder              // polling sessions' owners (forward.go); nil without
	sse       *sseHub                 // GET /sse streams (sse.go)
	tokens    *clock.Clock[tokenLife] // the sockets' token expiries (token.go)

	draining atomic.Bool

	mu        sync.Mutex
	listeners []net.Listener
	servers   []*http.Server
}

// New builds a Gateway; Run starts serving.
func New(cfg Config, log *slog.Logger) (*Gateway, error) {
	cfg.setDefaults()
	if cfg.NodeID == "" {
		cfg.NodeID = defaultNodeID()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	g := &Gateway{cfg: cfg, log: log, registry: prometheus.NewRegistry(), tokens: newTokenClock()}
	m, err := metrics.New(g.registry, metrics.Options{
		Namespaces:        append([]string{"/"}, cfg.Namespaces...),
		ProcessCollectors: true,
	})
	if err != nil {
		return nil, err
	}
	g.metrics = m
	if err := g.newVerifier(); err != nil {
		return nil, err
	}
	var factory adapter.Factory
	if cfg.Redis != "" {
		if factory, err = g.connectRedis(); err != nil {
			return nil, err
		}
	}
	if err := g.openStore(); err != nil {
		g.closeBackends()
		return nil, err
	}
	if err := g.openBroadcastLog(); err != nil {
		g.closeBackends()
		return nil, err
	}
	if err := g.openPresence(); err != nil {
		g.closeBackends()
		return nil, fmt.Errorf("gateway: presence: %w", err)
	}
	if factory == nil {
		factory = adapter.MemoryFactory(adapter.MemoryConfig{Node: cfg.NodeID, Metrics: m})
	}
	factory = g.presenceFactory(factory)
	if g.limits, err = g.newLimits(); err != nil {
		g.closeBackends()
		return nil, err
	}
	if g.hooks, err = g.newHooks(); err != nil {
		g.closeBackends()
		return nil, err
	}
	if err := g.startLifecycleHook(); err != nil {
		g.closeBackends()
		return nil, fmt.Errorf("gateway: lifecycle hook: %w", err)
	}
	if g.rdb != nil {
		g.idem = &redisIdem{client: g.rdb, prefix: cfg.RedisPrefix, window: cfg.IdempotencyWindow}
	} else {
		g.idem = newMemoryIdem(cfg.IdempotencyWindow)
	}
	if cfg.DurableBudget > 0 {
		if g.rdb != nil {
			g.budget = &redisBudget{client: g.rdb, prefix: cfg.RedisPrefix, limit: cfg.DurableBudget, now: time.Now}
		} else {
			g.budget = newMemoryBudget(cfg.DurableBudget)
		}
	}
	ecfg := cfg.Engine
	ecfg.CheckOrigin = g.checkOrigin
	ecfg.AllowRequest = g.limits.allowHandshake
	if g.rdb != nil && slices.Contains(cfg.Engine.Transports, "polling") {
		if g.fwd, err = g.newForwarder(); err != nil {
			g.closeBackends()
			return nil, err
		}
		ecfg.OnOpen = g.fwd.opened
	}
	g.sio, err = socketio.New(socketio.Config{
		Recovery: &socketio.Recovery{
			Store:       g.store,
			Log:         g.blog,
			Window:      cfg.RecoveryWindow,
			User:        func(s *socketio.Socket) string { return sessionOf(s).User },
			DurableRoom: g.durableRoom,
			Member:      memberOf,
			MayRejoin:   g.mayRejoin,
			Admit:       g.admitDurable,
		},
		Adapter: factory,
		Engine:  ecfg,
		Node:    cfg.NodeID,
		Metrics: m,
		Logger:  log,
	})
	if err != nil {
		g.closeBackends()
		return nil, err
	}
	if g.fwd != nil {
		g.fwd.takeover = g.sio
	}
	g.sse = newSSEHub(g)
	for _, name := range append([]string{"/"}, cfg.Namespaces...) {
		nsp, err := g.sio.Of(name)
		if err != nil {
			return nil, err
		}
		g.setupNamespace(nsp)
	}
	return g, nil
}

// newVerifier builds the token verifier from the secret, the public key
// and the JWKS URL (any combination), with the issuer and audience checks.
// A JWKS that cannot be fetched at start is logged, not fatal: the refresh
// loop keeps trying, and tokens signed by its keys are refused meanwhile.
func (g *Gateway) newVerifier() error {
	cfg := g.cfg
	if cfg.JWTSecret == "" && len(cfg.JWTPublicKey) == 0 && cfg.JWKSURL == "" {
		return nil
	}
	acfg := auth.Config{Secret: []byte(cfg.JWTSecret), Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience}
	if len(cfg.JWTPublicKey) > 0 {
		key, err := auth.LoadPublicKey(cfg.JWTPublicKey)
		if err != nil {
			return fmt.Errorf("gateway: jwt public key: %w", err)
		}
		acfg.PublicKey = key
	}
	if cfg.JWKSURL != "" {
		ks, err := auth.NewKeySet(auth.KeySetConfig{
			URL: cfg.JWKSURL,
			OnError: func(err error) {
				g.log.Warn("roomcast gateway: jwks fetch failed", "err", err)
			},
		})
		if err != nil {
			return fmt.Errorf("gateway: --jwks-url: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), cfg.RedisConnectTimeout)
		if err := ks.Refresh(ctx); err != nil {
			g.log.Warn("roomcast gateway: jwks not loaded at start; retrying in the background", "err", err)
		}
		cancel()
		ks.Start()
		g.keySet = ks
		acfg.KeySet = ks
	}
	v, err := auth.New(acfg)
	if err != nil {
		if g.keySet != nil {
			_ = g.keySet.Close()
		}
		return err
	}
	g.verifier = v
	return nil
}

// openStore opens the durable queue: in Redis with --redis, else in memory
// (a single node keeps it for its lifetime).
func (g *Gateway) openStore() error {
	var err error
	if g.rdb != nil {
		g.store, err = redisqueue.New(redisqueue.Config{
			Client: g.rdb, Prefix: g.cfg.RedisPrefix + ":queue", MaxLen: g.cfg.QueueMaxLen, MaxBytes: g.cfg.QueueMaxBytes,
			Retention: g.cfg.QueueRetention, MaxMembers: g.cfg.DurableRoomMembers,
			Metrics: g.metrics, Logger: g.log,
		})
	} else {
		g.store, err = queue.NewMemory(queue.MemoryConfig{
			MaxLen: g.cfg.QueueMaxLen, MaxBytes: g.cfg.QueueMaxBytes, Retention: g.cfg.QueueRetention,
			MaxMembers: g.cfg.DurableRoomMembers, Metrics: g.metrics,
		})
	}
	if err != nil {
		return fmt.Errorf("gateway: durable queue: %w", err)
	}
	return nil
}

// durableRoom reports whether room matches --durable-rooms.
func (g *Gateway) durableRoom(room string) bool {
	for _, p := range g.cfg.DurableRooms {
		if auth.Match(p, room) {
			return true
		}
	}
	return false
}

// Server returns the Socket.IO server, for embedding applications.
func (g *Gateway) Server() *socketio.Server { return g.sio }

// Registry returns the Prometheus registry of this node.
func (g *Gateway) Registry() *prometheus.Registry { return g.registry }

func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

func (g *Gateway) checkOrigin(r *http.Request) bool {
	if len(g.cfg.Origins) == 0 {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser: nothing to check
	}
	for _, o := range g.cfg.Origins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// bodyDeadline bounds reading a request's body (a polling POST, an API
// call) by HTTPReadTimeout, so a body trickled a byte at a time cannot hold
// a connection and a handler. Requests without a body are left alone: a
// long-polling GET waits for data and a websocket upgrade outlives the
// request.
func (g *Gateway) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.cfg.HTTPReadTimeout))
}

// Handler returns the client-facing handler: /socket.io/, /api/v1/ and the demo.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	var engine http.Handler = g.sio
	if g.fwd != nil {
		engine = g.fwd.handler(engine)
		mux.HandleFunc(handoverPath, g.fwd.serveHandover)
	}
	mux.HandleFunc("/socket.io/", func(w http.ResponseWriter, r *http.Request) {
		g.bodyDeadline(w, r)
		switch r.URL.Path {
		case "/socket.io/socket.io.js", "/socket.io/socket.io.min.js":
			g.serveClientScript(w, r)
			return
		}
		engine.ServeHTTP(w, r)
	})
	mux.HandleFunc("/sse", g.serveSSE)
	api := g.apiHandler()
	mux.Handle("/api/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.bodyDeadline(w, r)
		api.ServeHTTP(w, r)
	}))
	if g.cfg.Demo {
		mux.Handle("/", demo.Handler())
	}
	return mux
}

func (g *Gateway) serveClientScript(w http.ResponseWriter, r *http.Request) {
	js, ok := demo.ClientScript()
	if !ok {
		http.Error(w, "client bundle not built: run `make build`", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(js)
}

// AdminHandler returns the admin handler: /metrics, /healthz, /readyz.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttpHandler(g.registry))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := g.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// ErrDraining is reported by Ready while the node drains.
var ErrDraining = errors.New("gateway: draining")

// Ready reports whether the node can serve.
func (g *Gateway) Ready() error {
	if g.draining.Load() {
		return ErrDraining
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ReadyTimeout)
	defer cancel()
	return g.ready(ctx)
}

// Listen binds both addresses; Run then serves them. Splitting the two lets
// a caller learn the bound ports (":0") before serving.
func (g *Gateway) Listen() (addr, admin net.Addr, err error) {
	ln, err := net.Listen("tcp", g.cfg.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway: listen %s: %w", g.cfg.Addr, err)
	}
	aln, err := net.Listen("tcp", g.cfg.AdminAddr)
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("gateway: listen %s: %w", g.cfg.AdminAddr, err)
	}
	g.mu.Lock()
	g.listeners = []net.Listener{ln, aln}
	g.mu.Unlock()
	if g.fwd != nil {
		g.fwd.listening(ln.Addr())
	}
	return ln.Addr(), aln.Addr(), nil
}

// Run serves until Shutdown; it returns nil after a clean shutdown.
func (g *Gateway) Run() error {
	g.mu.Lock()
	if len(g.listeners) == 0 {
		g.mu.Unlock()
		if _, _, err := g.Listen(); err != nil {
			return err
		}
		g.mu.Lock()
	}
	lns := g.listeners
	g.servers = []*http.Server{
		{Handler: g.Handler(), ReadHeaderTimeout: g.cfg.ReadHeaderTimeout, IdleTimeout: g.cfg.HTTPIdleTimeout},
		{Handler: g.AdminHandler(), ReadHeaderTimeout: g.cfg.ReadHeaderTimeout, IdleTimeout: g.cfg.HTTPIdleTimeout},
	}
	srvs := g.servers
	g.mu.Unlock()
	g.log.Info("roomcast gateway serving", "addr", lns[0].Addr().String(), "admin", lns[1].Addr().String(), "node", g.cfg.NodeID, "demo", g.cfg.Demo)
	errc := make(chan error, 2)
	for i := range srvs {
		go func() { errc <- srvs[i].Serve(lns[i]) }()
	}
	var first error
	for range srvs {
		err := <-errc
		if err == nil || errors.Is(err, http.ErrServerClosed) || first != nil {
			continue
		}
		first = err
		// One server failed: drain the node, which stops the other one.
		// Run owns this drain and returns after it (errc has room for the
		// other server's result meanwhile).
		if serr := g.Shutdown(context.Background()); serr != nil {
			g.log.Warn("drain after a server failure incomplete", "err", serr)
		}
	}
	return first
}

// Shutdown drains the node: /readyz turns 503, new connections are refused,
// every client is disconnected so that it reconnects elsewhere, queued
// packets and in-flight acks are flushed, then the listeners close. It is
// bounded by ctx and by DrainTimeout.
func (g *Gateway) Shutdown(ctx context.Context) error {
	if !g.draining.CompareAndSwap(false, true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.DrainTimeout)
	defer cancel()
	g.log.Info("roomcast gateway draining", "connections", g.sio.ConnCount())
	g.sse.close() // streams end; EventSource reconnects elsewhere and resumes
	err := g.sio.Shutdown(ctx)
	// Requests forwarded to other nodes (and websockets proxied to them)
	// are cut like this node's own clients: they reconnect elsewhere.
	g.fwd.close()
	g.mu.Lock()
	srvs := g.servers
	g.mu.Unlock()
	for _, s := range srvs {
		if serr := s.Shutdown(ctx); serr != nil && err == nil {
			err = serr
		}
	}
	g.closeBackends()
	g.hooks.close()
	return err
}
