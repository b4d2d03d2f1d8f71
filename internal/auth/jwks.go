package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [KeySetConfig].
const (
	DefaultKeySetTimeout            = 10 * time.Second
	DefaultKeySetRefreshInterval    = 5 * time.Minute
	DefaultKeySetMinRefetchInterval = 30 * time.Second
	DefaultKeySetMaxBodyBytes       = 1 << 20
)

// KeySetConfig configures a [KeySet].
type KeySetConfig struct {
	// URL is where the JWK Set document (RFC 7517 §5) is fetched with GET;
	// http or https (use https outside tests: whoever can change the
	// document can mint tokens). Required.
	URL string

	// Client makes the requests. Defaults to a client of the KeySet's own,
	// whose idle connections Close releases.
	Client *http.Client

	// Timeout bounds each fetch, from sending the request to reading the
	// last byte of the body, whatever Client's own timeout. Defaults to
	// DefaultKeySetTimeout (10 s).
	Timeout time.Duration

	// RefreshInterval is how often the loop started by [KeySet.Start]
	// fetches the document after a successful fetch. Defaults to
	// DefaultKeySetRefreshInterval (5 min).
	RefreshInterval time.Duration

	// MinRefetchInterval is the least time between two fetches triggered by
	// tokens whose key the set does not hold (an unknown "kid"), so that a
	// flood of tokens with made-up kids costs the JWKS endpoint at most one
	// request per interval; it is also how soon the refresh loop retries
	// after a failed fetch. Defaults to DefaultKeySetMinRefetchInterval
	// (30 s).
	MinRefetchInterval time.Duration

	// MaxBodyBytes bounds the document; a larger body fails the fetch.
	// Defaults to DefaultKeySetMaxBodyBytes (1 MiB).
	MaxBodyBytes int64

	// OnError, when set, is called with every failed fetch's error (which
	// wraps ErrKeySet, and names the URL but no key material) so that the
	// caller can log and count it. It runs on the KeySet's fetching
	// goroutine, never concurrently with itself, before the callers waiting
	// for that fetch are released; it must not block (Close waits for it)
	// nor call the KeySet. Failures caused by Close are not reported.
	// Defaults to nil.
	OnError func(error)
}

// KeySet holds the verification keys published by an identity provider as a
// JWK Set at a URL: fetched, cached and refreshed, for [Config.KeySet].
//
// Usable keys are RSA keys of 2048 to 8192 bits (RS256) and EC keys on P-256
// (ES256) whose "use" (if any) is "sig" and whose "alg" (if any) matches
// their type; other entries are skipped. A fetch that fails — transport
// error, timeout, status other than 200, body over MaxBodyBytes, not a JWKS
// document, no usable key — keeps the keys of the last good fetch and is
// reported through OnError and [KeySet.Status].
//
// Keys are fetched by [KeySet.Refresh], by the loop that [KeySet.Start]
// starts, and on demand when a token names a "kid" the set does not hold (at
// most once per MinRefetchInterval). A KeySet is safe for concurrent use;
// reading the keys takes no lock. Every goroutine it starts is stopped by
// [KeySet.Close].
type KeySet struct {
	url        string
	client     *http.Client
	transport  *http.Transport // ours, when Client defaulted; closed by Close
	timeout    time.Duration
	refresh    time.Duration
	minRefetch time.Duration
	maxBody    int64
	onError    func(error)
	now        func() time.Time

	keys atomic.Pointer[jwkSet] // nil until the first successful fetch

	ctx    context.Context // parent of every fetch; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the refresh loop and fetch goroutines

	mu          sync.Mutex // guards the fields below
	inflight    *fetchRound
	lastAttempt time.Time
	lastSuccess time.Time
	lastErr     error
	fetches     uint64
	failures    uint64
	started     bool
	closed      bool
}

// fetchRound is one fetch, which any number of callers may wait for.
type fetchRound struct {
	done chan struct{} // closed when err is set
	err  error
}

// KeySetStatus is a snapshot of a [KeySet]'s state, for logs, metrics and
// readiness checks.
type KeySetStatus struct {
	// Keys is the number of usable keys installed; 0 until the first
	// successful fetch. Skipped counts the entries of that document that
	// were not usable.
	Keys, Skipped int
	// Updated is when the installed keys were fetched; zero if never.
	Updated time.Time
	// Fetches and Failures count the fetches started and failed so far.
	Fetches, Failures uint64
	// Err is the last finished fetch's error; nil if it succeeded or none
	// has finished.
	Err error
}

// NewKeySet validates cfg and returns a KeySet holding no keys yet. It
// starts no goroutine and makes no request: call [KeySet.Refresh] to fetch
// now (to fail fast at startup), [KeySet.Start] to keep the keys fresh, and
// [KeySet.Close] when done. Without Start the first token that needs a key
// triggers the first fetch. Errors wrap ErrKeySet.
func NewKeySet(cfg KeySetConfig) (*KeySet, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: URL %q is not an absolute http or https URL", ErrKeySet, cfg.URL)
	}
	if cfg.Timeout < 0 || cfg.RefreshInterval < 0 || cfg.MinRefetchInterval < 0 || cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("%w: negative duration or size in KeySetConfig", ErrKeySet)
	}
	s := &KeySet{
		url:        cfg.URL,
		client:     cfg.Client,
		timeout:    orDefault(cfg.Timeout, DefaultKeySetTimeout),
		refresh:    orDefault(cfg.RefreshInterval, DefaultKeySetRefreshInterval),
		minRefetch: orDefault(cfg.MinRefetchInterval, DefaultKeySetMinRefetchInterval),
		maxBody:    orDefault(cfg.MaxBodyBytes, DefaultKeySetMaxBodyBytes),
		onError:    cfg.OnError,
		now:        time.Now,
	}
	if s.client == nil {
		s.transport = http.DefaultTransport.(*http.Transport).Clone()
		s.client = &http.Client{Transport: s.transport, Timeout: s.timeout}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func orDefault[T time.Duration | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Start starts the refresh loop: it fetches at once unless a fetch is
// already fresh, then RefreshInterval after each successful fetch and
// MinRefetchInterval after each failed one, until Close. Calling Start again,
// or after Close, does nothing.
func (s *KeySet) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	s.wg.Add(1)
	go s.loop()
}

func (s *KeySet) loop() {
	defer s.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if d := s.nextDelay(); d > 0 {
			timer.Reset(d)
			select {
			case <-s.ctx.Done():
				return
			case <-timer.C:
			}
			continue // an on-demand fetch may have moved the deadline
		}
		r := s.begin(true)
		if r == nil {
			return // closed
		}
		select {
		case <-s.ctx.Done():
			return
		case <-r.done:
		}
	}
}

// nextDelay is how long the refresh loop waits before its next fetch.
func (s *KeySet) nextDelay() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due time.Time
	if s.lastErr != nil || s.lastSuccess.IsZero() {
		due = s.lastAttempt.Add(s.minRefetch) // retry; zero lastAttempt: now
	} else {
		due = s.lastSuccess.Add(s.refresh)
	}
	return due.Sub(s.now())
}

// Refresh fetches the document now — or waits for the fetch already under
// way — and returns that fetch's error, or ctx's if it ends first (the fetch
// then goes on in the background). It ignores MinRefetchInterval. On
// failure the previous keys stay installed. Errors wrap ErrKeySet.
func (s *KeySet) Refresh(ctx context.Context) error {
	r := s.begin(true)
	if r == nil {
		return fmt.Errorf("%w: key set closed", ErrKeySet)
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status returns a snapshot of the set's state.
func (s *KeySet) Status() KeySetStatus {
	s.mu.Lock()
	st := KeySetStatus{Updated: s.lastSuccess, Fetches: s.fetches, Failures: s.failures, Err: s.lastErr}
	s.mu.Unlock()
	if set := s.keys.Load(); set != nil {
		st.Keys, st.Skipped = len(set.keys), set.skipped
	}
	return st
}

// Close stops the refresh loop, aborts a fetch under way, waits for every
// goroutine of the set to return and releases idle connections of the
// default client. Keys already fetched stay usable; no fetch happens after
// Close. It is safe to call more than once.
func (s *KeySet) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	return nil
}

// begin starts a fetch and returns its round, or returns the round under
// way. Unless force, it returns nil instead of starting a fetch when the
// last one started less than MinRefetchInterval ago. It returns nil once the
// set is closed.
func (s *KeySet) begin(force bool) *fetchRound {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.inflight != nil {
		return s.inflight
	}
	now := s.now()
	if !force && !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < s.minRefetch {
		return nil
	}
	r := &fetchRound{done: make(chan struct{})}
	s.inflight = r
	s.lastAttempt = now
	s.fetches++
	s.wg.Add(1)
	go s.run(r)
	return r
}

// run performs the fetch of round r and installs its keys on success.
func (s *KeySet) run(r *fetchRound) {
	defer s.wg.Done()
	set, err := s.fetch()
	s.mu.Lock()
	s.lastErr = err
	if err == nil {
		s.keys.Store(set)
		s.lastSuccess = s.now()
	} else {
		s.failures++
	}
	s.mu.Unlock()
	// Report while the round is still in flight, so that no other fetch
	// can report concurrently, and before releasing the waiters, so that
	// the error is counted by the time Refresh returns it.
	if err != nil && s.onError != nil && s.ctx.Err() == nil {
		s.onError(err)
	}
	r.err = err
	s.mu.Lock()
	s.inflight = nil
	s.mu.Unlock()
	close(r.done)
}

// fetch GETs and decodes the document. Errors wrap ErrKeySet.
func (s *KeySet) fetch() (*jwkSet, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("jwks %s: %w: "+format, append([]any{s.url, ErrKeySet}, args...)...)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fail("%v", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if isTimeout(err) {
			return nil, fail("no complete response within %v", s.timeout)
		}
		return nil, fail("%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fail("status %s", resp.Status)
	}
	if resp.ContentLength > s.maxBody {
		return nil, fail("body of %d bytes exceeds the limit of %d", resp.ContentLength, s.maxBody)
	}
	limit := s.maxBody
	if limit < math.MaxInt64 {
		limit++ // one byte more tells "too large" from "exactly the limit"
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		if isTimeout(err) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fail("no complete response within %v", s.timeout)
		}
		return nil, fail("read body: %v", err)
	}
	if int64(len(body)) > s.maxBody {
		return nil, fail("body exceeds the limit of %d bytes", s.maxBody)
	}
	set, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", s.url, err)
	}
	return set, nil
}

// isTimeout reports whether err is a deadline: our context's or the client's.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// Reasons a key set gives no key for a token. Fixed, and free of the token's
// contents, so that Verify can return them to the client.
var (
	errKeySetEmpty  = fmt.Errorf("%w: key set not loaded", ErrUnknownKey)
	errKidUnknown   = fmt.Errorf("%w: no key with the token's kid", ErrUnknownKey)
	errKidNoType    = fmt.Errorf("%w: no key of the token's type", ErrUnknownKey)
	errKidWrongType = fmt.Errorf("%w: kid names a key of another type", ErrAlgorithm)
)

// keysFor returns the keys a token may be checked against: of the RSA type
// when rsaKey, else EC; with a kid, only the keys with that kid. When the set
// holds no such key it triggers one fetch, subject to MinRefetchInterval
// (and joins a fetch under way), waits for it within ctx, and looks again.
// A kid that names only keys of the other type is an algorithm error and
// triggers nothing.
func (s *KeySet) keysFor(ctx context.Context, kid string, rsaKey bool) ([]jwk, error) {
	keys, err := pickKeys(s.keys.Load(), kid, rsaKey)
	if err == nil || !errors.Is(err, ErrUnknownKey) {
		return keys, err
	}
	r := s.begin(false)
	if r == nil {
		return nil, err
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, err
	}
	return pickKeys(s.keys.Load(), kid, rsaKey)
}

func pickKeys(set *jwkSet, kid string, rsaKey bool) ([]jwk, error) {
	if set == nil {
		return nil, errKeySetEmpty
	}
	keys, found := set.candidates(kid, rsaKey)
	switch {
	case len(keys) > 0:
		return keys, nil
	case kid != "" && found:
		return nil, errKidWrongType
	case kid != "":
		return nil, errKidUnknown
	}
	return nil, errKidNoType
}
