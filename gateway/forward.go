package gateway

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/engineio"
)

// Owner forwarding (docs/ARCHITECTURE.md, "Polling without sticky
// sessions"): a polling session is a series of HTTP requests carrying its
// sid, and only the node that did the handshake holds the session. Each
// polling handshake records sid -> owner in Redis before it is answered; a
// node that receives a request (a GET, a POST, the websocket upgrade) for a
// sid it does not hold looks the owner up (once; the answer is cached) and
// proxies the request to it over HTTP, with the cluster secret in
// forwardHeader. A forwarded request is always served where it lands, so a
// request is forwarded at most once.

const (
	// forwardHeader carries the cluster secret on a forwarded request; a
	// client cannot forge it without the secret.
	forwardHeader = "X-Roomcast-Forward"
	// ownerRefresh is how often a node refreshes the owner records of its
	// live polling sessions (and deletes those of ended ones).
	ownerRefresh = 10 * time.Second
	// ownerTTL bounds an owner record a node stopped refreshing (it died).
	ownerTTL = 3 * ownerRefresh
	// ownerCacheTTL is how long a looked-up owner is remembered.
	ownerCacheTTL = 30 * time.Second
	// refreshBatch bounds the commands of one refresh pipeline.
	refreshBatch = 1000
)

// forwarder holds the owner records of this node's polling sessions and
// forwards other nodes' sessions' requests to their owners.
type forwarder struct {
	log     *slog.Logger
	rdb     redis.UniversalClient
	prefix  string // <redis-prefix>:owner:
	node    string
	secret  string
	timeout time.Duration // of one Redis call

	urlMu sync.RWMutex
	url   string // this node's cluster URL, known once it listens

	proxy  *httputil.ReverseProxy
	tr     *http.Transport
	client *http.Client // handover calls to owners, over tr

	takeover handoverServer // serves upgrades of other nodes' sessions here
	maxQueue int            // the engine's MaxQueueBytes

	local  sync.Map // sid -> *engineio.Conn: polling sessions held here
	owners sync.Map // sid -> *owner: owners of other nodes' sessions

	connsMu sync.Mutex
	conns   map[*trackedConn]struct{} // to other nodes; cut at close

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	// requests counts this node's part in forwarding, by result.
	requests *prometheus.CounterVec
}

// Results of roomcast_forwarded_requests_total.
const (
	fwdSent      = "sent"       // a request for another node's session, proxied to it
	fwdReceived  = "received"   // a request another node forwarded here
	fwdForbidden = "forbidden"  // a forwarding header with the wrong secret
	fwdOwnerGone = "owner_gone" // the owner did not answer: the client is told its session is unknown
	fwdHandover  = "handover"   // a websocket upgrade for another node's session, taken over here (handover.go)
)

// handoverServer takes sessions over (socketio.Server.ServeHandover).
type handoverServer interface {
	ServeHandover(w http.ResponseWriter, r *http.Request, sid string, src engineio.HandoverSource) bool
}

// owner is where a session lives, as its record says.
type owner struct {
	node   string
	target *url.URL
	seen   time.Time
}

type ownerKey struct{}

// newForwarder starts the refresh loop; close stops it.
func (g *Gateway) newForwarder() (*forwarder, error) {
	f := &forwarder{
		log: g.log, rdb: g.rdb, prefix: g.cfg.RedisPrefix + ":owner:", node: g.cfg.NodeID,
		secret: g.cfg.ClusterSecret, timeout: g.cfg.ReadyTimeout,
		conns: make(map[*trackedConn]struct{}), stop: make(chan struct{}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_forwarded_requests_total",
			Help: "Polling requests and upgrades for sessions another node holds, by result: sent (proxied to the owner), received (forwarded here), handover (an upgrade taking the session over from its owner), forbidden (wrong cluster secret), owner_gone (the owner did not answer).",
		}, []string{"result"}),
	}
	if err := g.registry.Register(f.requests); err != nil {
		return nil, err
	}
	for _, r := range []string{fwdSent, fwdReceived, fwdHandover, fwdForbidden, fwdOwnerGone} {
		f.requests.WithLabelValues(r)
	}
	if f.secret == "" {
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RedisConnectTimeout)
		defer cancel()
		var err error
		if f.secret, err = sharedSecret(ctx, g.rdb, g.cfg.RedisPrefix+":cluster-secret"); err != nil {
			return nil, fmt.Errorf("gateway: cluster secret: %w", err)
		}
	}
	if g.cfg.ClusterURL != "" {
		if err := f.setURL(g.cfg.ClusterURL); err != nil {
			return nil, err
		}
	}
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	f.tr = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return f.track(c), nil
		},
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		// A long-polling GET is answered within the ping interval (a ping
		// at the latest); anything slower is a dead owner.
		ResponseHeaderTimeout: g.cfg.Engine.PingInterval + g.cfg.Engine.PingTimeout,
		DisableCompression:    true,
	}
	f.client = &http.Client{Transport: f.tr}
	f.maxQueue = g.cfg.Engine.MaxQueueBytes
	if f.maxQueue <= 0 {
		f.maxQueue = engineio.DefaultMaxQueueBytes
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			o := pr.In.Context().Value(ownerKey{}).(*owner)
			pr.SetURL(o.target)
			pr.SetXForwarded()
			pr.Out.Header.Set(forwardHeader, f.secret)
		},
		Transport: f.tr,
		// Polling payloads are whole responses; flush them as they come.
		FlushInterval: -1,
		ErrorHandler:  f.proxyError,
		BufferPool:    proxyBuffers{},
	}
	f.wg.Add(1)
	go f.loop()
	return f, nil
}

// sharedSecret returns the fleet's forwarding secret, creating it in Redis
// if no node has yet.
func sharedSecret(ctx context.Context, rdb redis.UniversalClient, key string) (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	if err := rdb.SetNX(ctx, key, hex.EncodeToString(b[:]), 0).Err(); err != nil {
		return "", err
	}
	return rdb.Get(ctx, key).Result()
}

// setURL sets this node's cluster URL.
func (f *forwarder) setURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("gateway: --cluster-url %q is not an http(s)://host:port URL", s)
	}
	f.urlMu.Lock()
	f.url = strings.TrimRight(s, "/")
	f.urlMu.Unlock()
	return nil
}

// listening derives the cluster URL from the bound address when
// --cluster-url is not set: its host, or the hostname when it has none.
func (f *forwarder) listening(addr net.Addr) {
	f.urlMu.RLock()
	set := f.url != ""
	f.urlMu.RUnlock()
	if set {
		return
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	_ = f.setURL("http://" + net.JoinHostPort(host, port))
}

func (f *forwarder) selfURL() string {
	f.urlMu.RLock()
	defer f.urlMu.RUnlock()
	return f.url
}

// opened records a new polling session's owner (engineio.Config.OnOpen:
// before the handshake is answered, so the record exists before any
// request with the sid). A websocket session needs none: no request ever
// names its sid.
func (f *forwarder) opened(c *engineio.Conn) {
	if c.Transport() != "polling" {
		return
	}
	f.local.Store(c.ID(), c)
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	if err := f.rdb.Set(ctx, f.prefix+c.ID(), f.node+" "+f.selfURL(), ownerTTL).Err(); err != nil {
		// The session still works through a sticky load balancer.
		f.log.Warn("roomcast gateway: polling session owner not recorded; its requests must reach this node", "sid", c.ID(), "err", err)
	}
}

// handler serves next where the session lives here (or nowhere), and
// forwards the requests of other nodes' sessions.
func (f *forwarder) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, ok := r.Header[forwardHeader]; ok {
			if len(v) != 1 || subtle.ConstantTimeCompare([]byte(v[0]), []byte(f.secret)) != 1 {
				f.requests.WithLabelValues(fwdForbidden).Inc()
				writeEngineError(w, engineio.CodeForbidden)
				return
			}
			// Forwarded here: served here, whatever the records say.
			f.requests.WithLabelValues(fwdReceived).Inc()
			r.Header.Del(forwardHeader)
			next.ServeHTTP(w, r)
			return
		}
		sid := sidParam(r.URL.RawQuery)
		if sid == "" {
			next.ServeHTTP(w, r)
			return
		}
		if _, ok := f.local.Load(sid); ok {
			next.ServeHTTP(w, r)
			return
		}
		o := f.ownerOf(r.Context(), sid)
		if o == nil || o.node == f.node {
			next.ServeHTTP(w, r) // unknown: the engine says so
			return
		}
		if f.takeover != nil && r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			// The client ends up where its websocket is: the session moves
			// here, unless its node does not hand sessions over.
			src := &handoverSource{f: f, o: o, sid: sid, maxBytes: f.maxQueue}
			if f.takeover.ServeHandover(w, r, sid, src) {
				return
			}
		}
		f.requests.WithLabelValues(fwdSent).Inc()
		f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ownerKey{}, o)))
	})
}

// sidParam returns the sid query parameter without parsing the whole query.
func sidParam(q string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if v, ok := strings.CutPrefix(kv, "sid="); ok {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return ""
		}
	}
	return ""
}

// ownerOf returns the owner of sid: cached, else from its record; nil when
// there is none (or Redis cannot say).
func (f *forwarder) ownerOf(ctx context.Context, sid string) *owner {
	if v, ok := f.owners.Load(sid); ok {
		return v.(*owner)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rec, err := f.rdb.Get(ctx, f.prefix+sid).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			f.log.Debug("roomcast gateway: owner lookup failed", "sid", sid, "err", err)
		}
		return nil
	}
	node, raw, ok := strings.Cut(rec, " ")
	target, err := url.Parse(raw)
	if !ok || err != nil || target.Host == "" {
		return nil
	}
	o := &owner{node: node, target: target, seen: time.Now()}
	f.owners.Store(sid, o)
	return o
}

// proxyError answers a request the owner did not: it is gone (or the
// client left). The client is told its session is unknown, so it
// reconnects (and recovers) through the load balancer.
func (f *forwarder) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	if sid := sidParam(r.URL.RawQuery); sid != "" {
		f.owners.Delete(sid)
	}
	f.log.Debug("roomcast gateway: forwarding failed", "url", r.URL.String(), "err", err)
	f.requests.WithLabelValues(fwdOwnerGone).Inc()
	writeEngineError(w, engineio.CodeUnknownSID)
}

// writeEngineError answers as the engine does: HTTP 400 (403 for
// Forbidden) with {"code","message"}.
func writeEngineError(w http.ResponseWriter, code engineio.ErrorCode) {
	status := http.StatusBadRequest
	if code == engineio.CodeForbidden {
		status = http.StatusForbidden
	}
	body := `{"code":` + strconv.Itoa(int(code)) + `,"message":"` + code.Message() + `"}`
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func (f *forwarder) loop() {
	defer f.wg.Done()
	t := time.NewTicker(ownerRefresh)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.refresh()
		}
	}
}

// refresh extends the records of the live polling sessions held here,
// deletes those of ended ones and forgets old cached owners.
func (f *forwarder) refresh() {
	var live, gone []string
	f.local.Range(func(k, v any) bool {
		select {
		case <-v.(*engineio.Conn).Done():
			f.local.Delete(k)
			gone = append(gone, k.(string))
		default:
			live = append(live, k.(string))
		}
		return true
	})
	f.pipeline(live, func(p redis.Pipeliner, key string) { p.PExpire(context.Background(), key, ownerTTL) })
	f.pipeline(gone, func(p redis.Pipeliner, key string) { p.Del(context.Background(), key) })
	old := time.Now().Add(-ownerCacheTTL)
	f.owners.Range(func(k, v any) bool {
		if v.(*owner).seen.Before(old) {
			f.owners.Delete(k)
		}
		return true
	})
}

// pipeline runs one command per sid's record, refreshBatch at a time.
func (f *forwarder) pipeline(sids []string, cmd func(redis.Pipeliner, string)) {
	for len(sids) > 0 {
		n := min(len(sids), refreshBatch)
		ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, sid := range sids[:n] {
				cmd(p, f.prefix+sid)
			}
			return nil
		})
		cancel()
		if err != nil {
			f.log.Debug("roomcast gateway: owner records not refreshed", "err", err)
		}
		sids = sids[n:]
	}
}

// close stops the refresh loop, deletes this node's records and cuts the
// connections to other nodes (proxied websockets included: their clients
// reconnect, as a drain's own clients do).
func (f *forwarder) close() {
	if f == nil {
		return
	}
	f.stopOnce.Do(func() { close(f.stop) })
	f.wg.Wait()
	var sids []string
	f.local.Range(func(k, _ any) bool {
		sids = append(sids, k.(string))
		f.local.Delete(k)
		return true
	})
	f.pipeline(sids, func(p redis.Pipeliner, key string) { p.Del(context.Background(), key) })
	f.tr.CloseIdleConnections()
	f.connsMu.Lock()
	conns := f.conns
	f.conns = map[*trackedConn]struct{}{}
	f.connsMu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}

// proxyBuffers recycles the proxy's copy buffers (32 KiB each, one per
// forwarded request otherwise).
type proxyBuffers struct{}

var proxyBufferPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (proxyBuffers) Get() []byte  { return proxyBufferPool.Get().(*[32 << 10]byte)[:] }
func (proxyBuffers) Put(b []byte) { proxyBufferPool.Put((*[32 << 10]byte)(b)) }

// trackedConn is a connection to another node, remembered until closed.
type trackedConn struct {
	net.Conn
	f    *forwarder
	once sync.Once
}

func (f *forwarder) track(c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, f: f}
	f.connsMu.Lock()
	f.conns[tc] = struct{}{}
	f.connsMu.Unlock()
	return tc
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.f.connsMu.Lock()
		delete(c.f.conns, c)
		c.f.connsMu.Unlock()
	})
	return c.Conn.Close()
}
