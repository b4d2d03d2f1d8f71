package gateway

// The backend's side of the gateway (docs/HOOKS.md): client events go to
// the webhook (hooks_events.go), a CONNECT to the connect hook
// (hooks_connect.go), a publish to its room pattern's publish hook
// (hooks_publish.go), lifecycle events in batches to the lifecycle hook
// (lifecycle_hook.go). This file is the one HTTP client they share: it signs
// every request (hook.Sign with --hook-secret), bounds it by --hook-timeout,
// retries what the backend surely did not process (a refused connection, a
// 429/502/503) with backoff, holds at most --hook-concurrency requests in
// flight per node, and opens a circuit breaker per URL after
// --hook-breaker-failures failures in a row, so that a slow or dead backend
// costs each client one quick "unavailable" error instead of piling up
// goroutines and memory.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/roomcast/roomcast/hook"
)

// Hook names: the hook label of the hook metrics.
const (
	hookEvent     = "event"
	hookConnect   = "connect"
	hookPublish   = "publish"
	hookLifecycle = "lifecycle"
)

// Results of a hook call: the result label of roomcast_hook_requests_total.
const (
	hookOK          = "ok"
	hookError       = "error"        // 5xx, 4xx, a bad response, a transport error
	hookTimeout     = "timeout"      // --hook-timeout elapsed
	hookBusy        = "busy"         // --hook-concurrency requests already in flight
	hookOpen        = "breaker_open" // the URL's circuit breaker is open
	hookQueueFull   = "queue_full"   // the socket has --hook-queue events waiting
	hookRetried     = "retried"      // an attempt that is retried (counted per retry)
	maxHookResponse = 1 << 20        // bound of a response body read
	maxHookSession  = 4 << 10        // bound of a connect hook's session data
	hookBackoffBase = 50 * time.Millisecond
)

var hookResults = []string{hookOK, hookError, hookTimeout, hookBusy, hookOpen, hookQueueFull, hookRetried}

// Errors of a hook call; each is an "unavailable" error to the client.
var (
	errHookBusy    = errors.New("backend busy: too many requests in flight")
	errHookOpen    = errors.New("backend unavailable: circuit breaker open")
	errHookTimeout = errors.New("backend did not answer in time")
	errHookQueue   = errors.New("too many events waiting for the backend")
)

// errHookUnreachable stands, in what the client sees, for a transport
// error (whose text names the backend's address).
var errHookUnreachable = errors.New("backend unreachable")

// errHookBadResponse is an answer that does not decode.
var errHookBadResponse = errors.New("backend answered an invalid response")

// clientError is what a client may read of a hook call's error: the
// gateway's own errors and the HTTP status, never the backend's address.
func clientError(err error) error {
	var se *hookStatusError
	for _, known := range []error{errHookBusy, errHookOpen, errHookTimeout, errHookQueue, errHookBadResponse} {
		if errors.Is(err, known) {
			return known
		}
	}
	if errors.As(err, &se) {
		return se
	}
	return errHookUnreachable
}

// hookStatusError is a non-2xx answer.
type hookStatusError struct{ status int }

func (e *hookStatusError) Error() string { return "backend answered HTTP " + strconv.Itoa(e.status) }

// hookMetrics are the hook families, registered on the gateway's registry.
type hookMetrics struct {
	requests *prometheus.CounterVec   // hook, result
	duration *prometheus.HistogramVec // hook
	inflight prometheus.Gauge
	breakers *prometheus.GaugeVec // hook: open breakers
}

func newHookMetrics(reg prometheus.Registerer) (*hookMetrics, error) {
	m := &hookMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_hook_requests_total",
			Help: "Hook calls (docs/HOOKS.md) by hook (event, connect, publish, lifecycle) and result (ok, error, timeout, busy, breaker_open, queue_full; retried counts retries).",
		}, []string{"hook", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "roomcast_hook_duration_seconds",
			Help:    "Duration of hook calls that reached the backend, retries included, by hook.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"hook"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomcast_hook_inflight",
			Help: "Hook requests in flight on this node (bounded by --hook-concurrency).",
		}),
		breakers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "roomcast_hook_breaker_open",
			Help: "Hook URLs whose circuit breaker is open, by hook.",
		}, []string{"hook"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inflight, m.breakers} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, h := range []string{hookEvent, hookConnect, hookPublish, hookLifecycle} {
		for _, r := range hookResults {
			m.requests.WithLabelValues(h, r)
		}
		m.duration.WithLabelValues(h)
		m.breakers.WithLabelValues(h)
	}
	return m, nil
}

// hooks is the gateway's hook client; nil when no hook is configured.
type hooks struct {
	g       *Gateway
	secret  []byte
	http    *http.Client
	sem     chan struct{} // --hook-concurrency
	m       *hookMetrics
	webhook map[string]*hookURL // by namespace ("" for --webhook)
	connect *hookURL
	publish []publishHook // in configuration order; the first match wins
	// lifecycle is --lifecycle-hook: batches of lifecycle events
	// (lifecycle_hook.go), sent by the node's dispatcher.
	lifecycle *hookURL
}

// hookURL is one backend URL of one hook, with its circuit breaker.
type hookURL struct {
	hook string
	url  string
	br   breaker
}

type publishHook struct {
	pattern string
	target  *hookURL
}

func (g *Gateway) newHooks() (*hooks, error) {
	cfg := g.cfg
	if cfg.Webhook == "" && len(cfg.NamespaceWebhooks) == 0 && cfg.ConnectHook == "" && len(cfg.PublishHooks) == 0 && cfg.LifecycleHook == "" {
		return nil, nil
	}
	m, err := newHookMetrics(g.registry)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: cfg.HookTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.HookConcurrency,
		MaxIdleConnsPerHost: cfg.HookConcurrency,
		MaxConnsPerHost:     cfg.HookConcurrency,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	h := &hooks{
		g: g, secret: []byte(cfg.HookSecret), m: m,
		http:    &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		sem:     make(chan struct{}, cfg.HookConcurrency),
		webhook: map[string]*hookURL{},
	}
	target := func(hook, url string) *hookURL {
		return &hookURL{hook: hook, url: url, br: breaker{threshold: cfg.HookBreakerFailures, cooldown: cfg.HookBreakerCooldown}}
	}
	if cfg.Webhook != "" {
		h.webhook[""] = target(hookEvent, cfg.Webhook)
	}
	for ns, url := range cfg.namespaceWebhooks() {
		h.webhook[ns] = target(hookEvent, url)
	}
	if cfg.ConnectHook != "" {
		h.connect = target(hookConnect, cfg.ConnectHook)
	}
	if cfg.LifecycleHook != "" {
		h.lifecycle = target(hookLifecycle, cfg.LifecycleHook)
	}
	for _, ph := range cfg.publishHooks() {
		h.publish = append(h.publish, publishHook{pattern: ph[0], target: target(hookPublish, ph[1])})
	}
	return h, nil
}

func (h *hooks) close() {
	if h != nil {
		h.http.CloseIdleConnections()
	}
}

// webhookOf is the webhook of namespace ns: its own, else --webhook, else nil.
func (h *hooks) webhookOf(ns string) *hookURL {
	if h == nil {
		return nil
	}
	if t, ok := h.webhook[ns]; ok {
		return t
	}
	return h.webhook[""]
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// call POSTs req to t and decodes the answer with decode, within ctx (the
// caller bounds it by --hook-timeout). Refusals by the concurrency bound and
// the breaker cost no request.
func (h *hooks) call(ctx context.Context, t *hookURL, id string, req any, decode func([]byte) error) error {
	if !t.br.allow(time.Now()) {
		h.m.requests.WithLabelValues(t.hook, hookOpen).Inc()
		return errHookOpen
	}
	select {
	case h.sem <- struct{}{}:
	default:
		t.br.abandon() // a probe that did not happen
		h.m.requests.WithLabelValues(t.hook, hookBusy).Inc()
		return errHookBusy
	}
	h.m.inflight.Inc()
	defer func() {
		h.m.inflight.Dec()
		<-h.sem
	}()
	body, err := json.Marshal(req)
	if err != nil {
		t.br.abandon()
		return err
	}
	start := time.Now()
	err = h.attempts(ctx, t, id, body, decode)
	h.m.duration.WithLabelValues(t.hook).Observe(time.Since(start).Seconds())
	result := hookOK
	switch {
	case err == nil:
	case errors.Is(err, errHookTimeout):
		result = hookTimeout
	default:
		result = hookError
	}
	h.m.requests.WithLabelValues(t.hook, result).Inc()
	if t.br.done(err == nil, time.Now()) {
		h.g.log.Warn("roomcast gateway: hook circuit breaker open", "hook", t.hook, "url", t.url, "err", err)
	}
	h.m.breakers.WithLabelValues(t.hook).Set(float64(h.openBreakers(t.hook)))
	return err
}

func (h *hooks) openBreakers(hook string) int {
	n := 0
	now := time.Now()
	count := func(t *hookURL) {
		if t != nil && t.hook == hook && t.br.isOpen(now) {
			n++
		}
	}
	for _, t := range h.webhook {
		count(t)
	}
	count(h.connect)
	count(h.lifecycle)
	for _, p := range h.publish {
		count(p.target)
	}
	return n
}

// attempts sends body until an answer, a failure that must not be retried
// (the backend may have processed it), the retries are used up or ctx ends.
func (h *hooks) attempts(ctx context.Context, t *hookURL, id string, body []byte, decode func([]byte) error) error {
	for attempt := 0; ; attempt++ {
		resp, err := h.post(ctx, t.url, id, body)
		if err == nil {
			if err := decode(resp); err != nil {
				return fmt.Errorf("%w: %v", errHookBadResponse, err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return errHookTimeout
		}
		if attempt >= h.g.cfg.HookRetries || !retryable(err) {
			return err
		}
		h.m.requests.WithLabelValues(t.hook, hookRetried).Inc()
		// Exponential backoff with full jitter: 50ms, 100ms, 200ms... bounds.
		d := time.Duration(mrand.Int64N(int64(hookBackoffBase << attempt)))
		select {
		case <-ctx.Done():
			return errHookTimeout
		case <-time.After(d):
		}
	}
}

// retryable reports whether a failed attempt surely did not reach the
// backend's logic: the connection was refused, or the backend (or its
// proxy) said 429, 502 or 503. A 500 or a timeout may have been processed.
func retryable(err error) bool {
	var se *hookStatusError
	if errors.As(err, &se) {
		return se.status == http.StatusTooManyRequests || se.status == http.StatusBadGateway || se.status == http.StatusServiceUnavailable
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

func (h *hooks) post(ctx context.Context, url, id string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "roomcast-gateway")
	req.Header.Set(hook.HeaderTimestamp, ts)
	req.Header.Set(hook.HeaderSignature, hook.Sign(h.secret, ts, body))
	if id != "" {
		req.Header.Set(hook.HeaderRequestID, id)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errHookTimeout
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxHookResponse+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, errHookTimeout
		}
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &hookStatusError{status: resp.StatusCode}
	}
	if len(data) > maxHookResponse {
		return nil, fmt.Errorf("backend response over %d bytes", maxHookResponse)
	}
	return data, nil
}

// breaker is a circuit breaker: threshold failures in a row open it for
// cooldown; then one probe is let through (half-open), whose success closes
// it and whose failure opens it again. A threshold <= 0 never opens.
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
}

// allow reports whether a request may go: always when closed, once per
// cooldown when open.
func (b *breaker) allow(now time.Time) bool {
	if b.threshold <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < b.threshold {
		return true
	}
	if now.Before(b.openUntil) || b.probing {
		return false
	}
	b.probing = true
	return true
}

// abandon gives back an allowed request that was not sent.
func (b *breaker) abandon() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// done records a request's outcome and reports whether it opened the breaker.
func (b *breaker) done(ok bool, now time.Time) (opened bool) {
	if b.threshold <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if ok {
		b.failures = 0
		return false
	}
	b.failures++
	if b.failures >= b.threshold {
		opened = b.failures == b.threshold || now.After(b.openUntil)
		b.openUntil = now.Add(b.cooldown)
	}
	return opened
}

func (b *breaker) isOpen(now time.Time) bool {
	if b.threshold <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures >= b.threshold && now.Before(b.openUntil)
}
