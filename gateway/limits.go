package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/ratelimit"
	"github.com/roomcast/roomcast/socketio"
)

// Limits that follow the identity (docs/SECURITY.md): budgets are kept per
// user and per client IP, not per socket, so reconnecting does not refill
// them; with --redis they are cluster-wide.
//
// Keys, one key space per limiter:
//
//	events      user:<sub>          (signed-in users; anonymous ids are random per connection)
//	ip events   ip:<addr>
//	connects    connect-ip:<addr>   (a refused CONNECT costs connectPenalty more)
//	handshakes  handshake-ip:<addr>
//	conns       user:<sub>, ip:<addr>
const (
	connectPenalty = 5
	// nodesRefresh is how often the live nodes counted by the connection
	// caps are read from the adapter's registry.
	nodesRefresh     = 5 * time.Second
	codeTooManyConns = "too_many_connections"
)

// limits holds the gateway's limiters; a nil limiter is a limit turned off.
type limits struct {
	g          *Gateway
	trusted    []netip.Prefix
	events     ratelimit.Limiter // per user
	ipEvents   ratelimit.Limiter // per client IP
	connects   ratelimit.Limiter // CONNECT attempts per client IP
	handshakes ratelimit.Limiter // Engine.IO handshakes per client IP
	conns      ratelimit.Counter // nil when both caps are off
	maxUser    int               // <= 0: no cap (still counted when conns is set)
	maxIP      int

	live     atomic.Pointer[[]string] // live nodes, for the Redis counter
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// newLimits builds the limiters from the config: in Redis when the gateway
// has one, in memory otherwise.
func (g *Gateway) newLimits() (*limits, error) {
	cfg := g.cfg
	trusted, err := ratelimit.ParsePrefixes(strings.Join(cfg.TrustedProxies, ","))
	if err != nil {
		return nil, fmt.Errorf("gateway: --trusted-proxies: %w", err)
	}
	l := &limits{g: g, trusted: trusted, stop: make(chan struct{})}
	for _, x := range []struct {
		dst  *ratelimit.Limiter
		rate float64
	}{
		{&l.events, cfg.EventRate},
		{&l.ipEvents, cfg.IPEventRate},
		{&l.connects, cfg.ConnectRate},
		{&l.handshakes, cfg.HandshakeRate},
	} {
		if x.rate <= 0 {
			continue // negative: off (zero was defaulted)
		}
		lim, err := g.newLimiter(x.rate)
		if err != nil {
			l.close()
			return nil, err
		}
		*x.dst = lim
	}
	l.maxUser, l.maxIP = cfg.MaxConnsPerUser, cfg.MaxConnsPerIP
	if l.maxUser > 0 || l.maxIP > 0 {
		if g.rdb != nil {
			l.refreshNodes()
			c, err := ratelimit.NewRedisCounter(ratelimit.RedisCounterConfig{
				Client: g.rdb, Prefix: cfg.RedisPrefix, Node: cfg.NodeID,
				LiveNodes: l.liveNodes,
				// Called on every CONNECT while Redis is away: debug only
				// (readiness and roomcast_redis_errors_total report it).
				OnError: func(err error) {
					g.log.Debug("roomcast gateway: connection caps limited per node", "err", err)
				},
			})
			if err != nil {
				l.close()
				return nil, fmt.Errorf("gateway: connection caps: %w", err)
			}
			l.conns = c
			l.wg.Add(1)
			go l.nodesLoop()
		} else {
			l.conns = ratelimit.NewMemoryCounter()
		}
	}
	return l, nil
}

// newLimiter returns a token bucket of rate per second, bursts of 2×.
func (g *Gateway) newLimiter(rate float64) (ratelimit.Limiter, error) {
	c := ratelimit.Config{Rate: rate, Burst: 2 * rate}
	if g.rdb == nil {
		return ratelimit.NewMemory(c)
	}
	return ratelimit.NewRedis(ratelimit.RedisConfig{
		Config: c, Client: g.rdb, Prefix: g.cfg.RedisPrefix,
		OnError: func(err error) {
			g.log.Debug("roomcast gateway: rate limits local only", "err", err)
		},
	})
}

func (l *limits) liveNodes() []string {
	if p := l.live.Load(); p != nil {
		return *p
	}
	return nil
}

// refreshNodes reads the node registry; on error the last list stays.
func (l *limits) refreshNodes() {
	if l.g.cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.g.cfg.ReadyTimeout)
	defer cancel()
	ids, err := l.g.cluster.Nodes(ctx)
	if err != nil {
		return
	}
	l.live.Store(&ids)
}

func (l *limits) nodesLoop() {
	defer l.wg.Done()
	t := time.NewTicker(nodesRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.refreshNodes()
		}
	}
}

func (l *limits) close() {
	if l == nil {
		return
	}
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
	for _, lim := range []ratelimit.Limiter{l.events, l.ipEvents, l.connects, l.handshakes} {
		if lim != nil {
			_ = lim.Close()
		}
	}
	if l.conns != nil {
		_ = l.conns.Close()
	}
}

// clientIP is the client address of a request, behind --trusted-proxies.
func (l *limits) clientIP(r *http.Request) string {
	a := ratelimit.ClientIP(r, l.trusted)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	return a.String()
}

func retryMillis(d time.Duration) int64 {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return ms
}

// allowHandshake is the engine's AllowRequest: Engine.IO handshakes per
// client IP.
func (l *limits) allowHandshake(r *http.Request) error {
	if l.handshakes == nil {
		return nil
	}
	ok, retry := l.handshakes.Allow("handshake-ip:"+l.clientIP(r), 1)
	if ok {
		return nil
	}
	l.g.metrics.LimitRefused("handshake_rate")
	return &engineio.TooManyRequestsError{RetryAfter: retry}
}

func rateLimitedConnect(retry time.Duration) *socketio.ConnectError {
	return &socketio.ConnectError{
		Message: "rate limited",
		Data:    map[string]any{"code": codeRateLimited, "retryAfter": retryMillis(retry)},
		Reason:  "rate limited",
		Close:   true,
	}
}

// connectMiddleware wraps the authentication middleware with the CONNECT
// rate per client IP (a refused CONNECT costs connectPenalty more; when
// that cannot be paid the client is over the limit) and, once the socket's
// user is known, the connection caps.
func (l *limits) connectMiddleware(auth socketio.Middleware) socketio.Middleware {
	return func(s *socketio.Socket) error {
		ip := l.clientIP(s.Request())
		ckey := "connect-ip:" + ip
		if l.connects != nil && !s.HandedOver() { // the client did not connect again
			if ok, retry := l.connects.Allow(ckey, 1); !ok {
				l.g.metrics.LimitRefused("connect_rate")
				return rateLimitedConnect(retry)
			}
		}
		if err := auth(s); err != nil {
			var ce *socketio.ConnectError
			if l.connects != nil && errors.As(err, &ce) && ce.Reason == "auth" {
				if ok, retry := l.connects.Allow(ckey, connectPenalty); !ok {
					l.g.metrics.LimitRefused("connect_rate")
					return rateLimitedConnect(retry)
				}
			}
			return err
		}
		return l.acquireConns(s, ip)
	}
}

// acquireConns counts the socket against its user's and its IP's caps,
// until its context ends (disconnect, or a CONNECT that fails later on).
func (l *limits) acquireConns(s *socketio.Socket, ip string) error {
	if l.conns == nil {
		return nil
	}
	var releases []func()
	refuse := func(limit string) error {
		for _, r := range releases {
			r()
		}
		l.g.metrics.LimitRefused(limit)
		return &socketio.ConnectError{
			Message: "too many connections",
			Data:    map[string]any{"code": codeTooManyConns},
			Reason:  "too many connections",
		}
	}
	sess := sessionOf(s)
	ctx, cancel := context.WithTimeout(context.Background(), l.g.cfg.EventTimeout)
	defer cancel()
	try := func(key string, max int, limit string) error {
		if max < 0 {
			return nil
		}
		rel, err := l.conns.Acquire(ctx, key, max)
		if errors.Is(err, ratelimit.ErrTooMany) && max > 0 && supersedes(s) {
			// The client is back before this node noticed that its previous
			// socket died; recovery closes that one (and its release gives
			// the place back): one more for the moment.
			rel, err = l.conns.Acquire(ctx, key, max+1)
		}
		switch {
		case errors.Is(err, ratelimit.ErrTooMany):
			return refuse(limit)
		case err != nil:
			// Closed (draining) or timed out: not counted, let it through.
			return nil
		}
		releases = append(releases, rel)
		return nil
	}
	if !sess.Anonymous && sess.User != "" {
		if err := try(userRoom(sess.User), l.maxUser, "conns_per_user"); err != nil {
			return err
		}
	}
	if err := try("ip:"+ip, l.maxIP, "conns_per_ip"); err != nil {
		return err
	}
	if len(releases) > 0 {
		context.AfterFunc(s.Context(), func() {
			for _, r := range releases {
				r()
			}
		})
	}
	return nil
}

// eventMiddleware limits a socket's events by its user and its client IP.
// eventKeys names the buckets a connected socket's events are counted in
// (limitEvent): its user's and its client IP's, kept on its session.
func (l *limits) eventKeys(s *socketio.Socket) {
	sess, _ := s.Data().(*Session)
	if sess == nil {
		return
	}
	if !sess.Anonymous && sess.User != "" && l.events != nil {
		sess.userKey = userRoom(sess.User)
	}
	if l.ipEvents != nil {
		sess.ipKey = "ip:" + l.clientIP(s.Request())
	}
}

// limitEvent is the namespaces' event middleware: the event rates per user
// and per client IP.
func (l *limits) limitEvent(e *socketio.Event) error {
	sess := sessionOf(e.Socket())
	if sess.userKey != "" {
		if ok, retry := l.events.Allow(sess.userKey, 1); !ok {
			return l.refuseEvent(e, "event_rate", retry)
		}
	}
	if sess.ipKey != "" {
		if ok, retry := l.ipEvents.Allow(sess.ipKey, 1); !ok {
			return l.refuseEvent(e, "ip_event_rate", retry)
		}
	}
	return nil
}

var errRateLimited = errors.New("gateway: rate limited")

func (l *limits) refuseEvent(e *socketio.Event, limit string, retry time.Duration) error {
	l.g.metrics.LimitRefused(limit)
	if e.HasAck() {
		_ = e.Ack(map[string]any{"error": map[string]any{
			"code": codeRateLimited, "message": "too many events: slow down", "retryAfter": retryMillis(retry),
		}})
	}
	return errRateLimited
}

// supersedes reports whether s recovers the session of a socket still
// connected on this node, which recovery is about to close.
func supersedes(s *socketio.Socket) bool {
	if !s.Recovered() {
		return false
	}
	pid := s.PID()
	for _, o := range s.Namespace().LocalSockets() {
		if o != s && o.Connected() && o.PID() == pid {
			return true
		}
	}
	return false
}
