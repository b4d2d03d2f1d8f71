package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/roomcast/roomcast/internal/clock"
)

// shardCount is the number of session-index shards (a power of two).
const shardCount = 32

type shard struct {
	mu    sync.RWMutex
	conns map[string]*Conn
}

// Server is an Engine.IO v4 server; mount it as an http.Handler.
type Server struct {
	cfg             Config
	log             *slog.Logger
	allowPolling    bool
	allowWebSocket  bool
	upgradesAllowed bool
	acceptOpts      *websocket.AcceptOptions

	// regMu orders registrations against Shutdown: sessions register (and
	// wg.Add) under RLock, Shutdown sets closing under Lock.
	regMu   sync.RWMutex
	closing bool

	shards [shardCount]shard
	count  atomic.Int64
	wg     sync.WaitGroup     // one per session until its teardown ends
	idle   idleClock          // when writers of quiet connections end
	hb     *clock.Clock[Conn] // every session's heartbeat (heartbeat.go)

	pollOnce sync.Once
	poll     *readPoller // idle websockets' reads (readpark.go); made with the first websocket
}

// readPoller returns the server's read poller, started by the first
// websocket; nil once Shutdown began, or where there is none.
func (s *Server) readPoller() *readPoller {
	s.pollOnce.Do(func() {
		if !s.isClosing() {
			s.poll = newReadPoller()
		}
	})
	if s.isClosing() {
		return nil
	}
	return s.poll
}

// New returns a Server for cfg. It fails if cfg.OnConnection is nil or a
// field is out of range.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg,
		log: cfg.Logger,
		// The engine checks origins itself (Config.CheckOrigin).
		acceptOpts: &websocket.AcceptOptions{InsecureSkipVerify: true},
	}
	for _, tr := range cfg.Transports {
		switch tr {
		case transportPolling:
			s.allowPolling = true
		case transportWebSocket:
			s.allowWebSocket = true
		}
	}
	s.upgradesAllowed = s.allowPolling && s.allowWebSocket && !cfg.DisableUpgrades
	s.hb = newHeartbeatClock(&s.cfg)
	for i := range s.shards {
		s.shards[i].conns = make(map[string]*Conn)
	}
	return s, nil
}

// Count returns the number of open sessions.
func (s *Server) Count() int { return int(s.count.Load()) }

// ServeHTTP handles every Engine.IO request: handshakes, polling GETs and
// POSTs, websocket connections and upgrades. It does not check the path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(w, r) {
		return
	}
	if r.Method == http.MethodOptions {
		s.preflight(w, r)
		return
	}
	q := r.URL.Query()
	transport := q.Get("transport")
	if !s.transportAllowed(transport) {
		writeError(w, CodeUnknownTransport)
		return
	}
	if q.Get("EIO") != "4" {
		writeError(w, CodeUnsupportedProtocol)
		return
	}
	upgrade := isWebSocketUpgrade(r)

	if sid := q.Get("sid"); sid != "" {
		c := s.lookup(sid)
		if c != nil && c.pongOverdue(time.Now()) {
			c.closeWith(ReasonPingTimeout, nil, modeAbort, nil)
			c = nil
		}
		if c == nil {
			writeError(w, CodeUnknownSID)
			return
		}
		switch {
		case upgrade && transport == transportWebSocket:
			c.serveProbe(w, r)
		case upgrade || transport != transportPolling:
			writeError(w, CodeBadRequest)
		case r.Method == http.MethodGet:
			c.servePoll(w, r)
		case r.Method == http.MethodPost:
			c.servePost(w, r)
		default:
			writeError(w, CodeBadRequest)
		}
		return
	}

	// Handshake.
	if r.Method != http.MethodGet {
		writeError(w, CodeBadHandshakeMethod)
		return
	}
	if upgrade != (transport == transportWebSocket) {
		writeError(w, CodeBadRequest)
		return
	}
	if s.isClosing() {
		writeError(w, CodeShuttingDown)
		return
	}
	if s.cfg.AllowRequest != nil {
		if err := s.cfg.AllowRequest(r); err != nil {
			s.log.Debug("engineio: handshake refused", "remote", r.RemoteAddr, "err", err)
			var tm *TooManyRequestsError
			if errors.As(err, &tm) {
				if tm.RetryAfter > 0 {
					w.Header().Set("Retry-After", strconv.FormatInt(int64((tm.RetryAfter+time.Second-1)/time.Second), 10))
				}
				writeError(w, CodeTooManyRequests)
				return
			}
			writeError(w, CodeForbidden)
			return
		}
	}
	if upgrade {
		s.handshakeWebSocket(w, r)
	} else {
		s.handshakePolling(w, r)
	}
}

// Shutdown refuses new sessions (HTTP 503), closes every session with
// reason "server shutting down" after flushing its queue, and waits for all
// of the engine's goroutines. ctx bounds the flushing: when it ends, the
// remaining connections are cut and Shutdown returns ctx.Err() once they
// are gone. Handlers that never return keep Shutdown waiting.
func (s *Server) Shutdown(ctx context.Context) error {
	s.regMu.Lock()
	s.closing = true
	s.regMu.Unlock()

	for _, c := range s.sessions() {
		c.closeWith(ReasonServerShutdown, nil, modeFlush, ctx)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		// Every flushing session's force-close hook fired with ctx.
		<-done
		err = ctx.Err()
	}
	// Every session's teardown gave back its parked read: nothing is left
	// in the poller.
	s.pollOnce.Do(func() {})
	s.poll.stop()
	return err
}

func (s *Server) isClosing() bool {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	return s.closing
}

func (s *Server) transportAllowed(t string) bool {
	switch t {
	case transportPolling:
		return s.allowPolling
	case transportWebSocket:
		return s.allowWebSocket
	}
	return false
}

// checkOrigin applies Config.CheckOrigin and sets the CORS response headers
// for an allowed browser origin. It answers a refused request itself.
func (s *Server) checkOrigin(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.CheckOrigin != nil && !s.cfg.CheckOrigin(r) {
		writeError(w, CodeForbidden)
		return false
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
	return true
}

// preflight answers a CORS preflight request.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
		h.Set("Access-Control-Allow-Headers", rh)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

// isWebSocketUpgrade reports whether r asks to switch to the websocket
// protocol.
func isWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// newSID returns 20 characters of base64url over 15 bytes of crypto/rand.
func newSID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// openFrame builds the OPEN packet of a new session.
func (s *Server) openFrame(sid string, kind transportKind) Frame {
	upgrades := `[]`
	if kind == kindPolling && s.upgradesAllowed {
		upgrades = `["websocket"]`
	}
	b := make([]byte, 0, 128)
	b = append(b, typeOpen)
	b = append(b, `{"sid":"`...)
	b = append(b, sid...)
	b = append(b, `","upgrades":`...)
	b = append(b, upgrades...)
	b = append(b, `,"pingInterval":`...)
	b = strconv.AppendInt(b, s.cfg.PingInterval.Milliseconds(), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, s.cfg.PingTimeout.Milliseconds(), 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, s.cfg.MaxPayload, 10)
	b = append(b, '}')
	return Frame{Data: b}
}

func (s *Server) shardFor(sid string) *shard {
	// FNV-1a; sids are random, this only spreads them.
	h := uint32(2166136261)
	for i := 0; i < len(sid); i++ {
		h ^= uint32(sid[i])
		h *= 16777619
	}
	return &s.shards[h&(shardCount-1)]
}

// register indexes a new session and accounts for it until its teardown. It
// fails once Shutdown has begun.
func (s *Server) register(c *Conn) bool {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	sh := s.shardFor(c.id)
	sh.mu.Lock()
	sh.conns[c.id] = c
	sh.mu.Unlock()
	s.count.Add(1)
	return true
}

// remove unindexes c; it is idempotent.
func (s *Server) remove(c *Conn) {
	sh := s.shardFor(c.id)
	sh.mu.Lock()
	if sh.conns[c.id] == c {
		delete(sh.conns, c.id)
		s.count.Add(-1)
	}
	sh.mu.Unlock()
}

func (s *Server) lookup(sid string) *Conn {
	sh := s.shardFor(sid)
	sh.mu.RLock()
	c := sh.conns[sid]
	sh.mu.RUnlock()
	return c
}

// sessions returns a snapshot of the indexed sessions.
func (s *Server) sessions() []*Conn {
	var out []*Conn
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, c := range sh.conns {
			out = append(out, c)
		}
		sh.mu.RUnlock()
	}
	return out
}
