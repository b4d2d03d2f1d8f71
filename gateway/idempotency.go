package gateway

// Idempotent publishing: POST /api/v1/emit and a client's publish accept an
// idempotencyKey. The first request with a key reserves it for
// --idempotency-window and records its answer; a repeat within the window
// gets that answer (with "duplicate": true) and delivers nothing; a repeat
// while the first is still running gets 409 / in_progress. The record is in
// Redis with --redis (cluster-wide), in memory otherwise.
//
// Messages to users (and to durable rooms' members) are deduplicated per
// user by the queue itself: the key's record and the stream append are one
// Redis script run (queue.WithIdempotencyKey), so a repeat after a partial
// failure, or after the answer's record was lost, appends only for the
// users that do not have it yet, and answers the others' original entry IDs.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/socketio"
)

const (
	defaultIdempotencyWindow = 5 * time.Minute
	maxIdempotencyKey        = 128
	codeInProgress           = "in_progress"
	idemPending              = "\x00pending"
)

var (
	errInProgress = errors.New("gateway: a request with this idempotency key is in progress")
	errIdemStore  = errors.New("gateway: idempotency record unavailable")
)

// idemRecord is a record of answers by idempotency key.
type idemRecord interface {
	// begin reserves key for window. It returns the recorded answer of a
	// key already answered, errInProgress when another request holds it,
	// or nil, nil when the caller now holds it and must finish or abandon.
	begin(ctx context.Context, key string) ([]byte, error)
	// finish records the answer of a held key.
	finish(ctx context.Context, key string, answer []byte) error
	// abandon releases a held key, so that a retry runs again.
	abandon(ctx context.Context, key string)
}

// validIdempotencyKey reports whether k may be an idempotency key.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdempotencyKey {
		return false
	}
	for _, r := range k {
		if unicode.IsControl(r) || r == ' ' {
			return false
		}
	}
	return true
}

// memoryIdem is the single node's record.
type memoryIdem struct {
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	entries   map[string]idemEntry
	nextSweep time.Time
}

type idemEntry struct {
	answer  []byte // nil while pending
	expires time.Time
}

func newMemoryIdem(window time.Duration) *memoryIdem {
	return &memoryIdem{window: window, now: time.Now, entries: map[string]idemEntry{}}
}

func (m *memoryIdem) begin(_ context.Context, key string) ([]byte, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.nextSweep) {
		for k, e := range m.entries {
			if now.After(e.expires) {
				delete(m.entries, k)
			}
		}
		m.nextSweep = now.Add(m.window / 4)
	}
	if e, ok := m.entries[key]; ok && now.Before(e.expires) {
		if e.answer == nil {
			return nil, errInProgress
		}
		return e.answer, nil
	}
	m.entries[key] = idemEntry{expires: now.Add(m.window)}
	return nil, nil
}

func (m *memoryIdem) finish(_ context.Context, key string, answer []byte) error {
	m.mu.Lock()
	m.entries[key] = idemEntry{answer: answer, expires: m.now().Add(m.window)}
	m.mu.Unlock()
	return nil
}

func (m *memoryIdem) abandon(_ context.Context, key string) {
	m.mu.Lock()
	delete(m.entries, key)
	m.mu.Unlock()
}

// redisIdem is the cluster-wide record: one string key per idempotency key.
type redisIdem struct {
	client redis.UniversalClient
	prefix string
	window time.Duration
}

func (r *redisIdem) key(k string) string { return r.prefix + ":idem:{" + k + "}" }

func (r *redisIdem) begin(ctx context.Context, key string) ([]byte, error) {
	ok, err := r.client.SetNX(ctx, r.key(key), idemPending, r.window).Result()
	if err != nil {
		return nil, errors.Join(errIdemStore, err)
	}
	if ok {
		return nil, nil
	}
	v, err := r.client.Get(ctx, r.key(key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return r.begin(ctx, key) // expired in between
	case err != nil:
		return nil, errors.Join(errIdemStore, err)
	case string(v) == idemPending:
		return nil, errInProgress
	}
	return v, nil
}

func (r *redisIdem) finish(ctx context.Context, key string, answer []byte) error {
	return r.client.Set(ctx, r.key(key), answer, r.window).Err()
}

func (r *redisIdem) abandon(ctx context.Context, key string) {
	_ = r.client.Del(ctx, r.key(key)).Err()
}

// recordedAnswer is what the record keeps of an answer: its HTTP status
// and body.
type recordedAnswer struct {
	Status int            `json:"status"`
	Body   map[string]any `json:"body"`
}

// once runs do under the idempotency key, or answers the recorded answer of
// an earlier request with it (its body with "duplicate": true). do's
// errors are *apiError. keep reports whether a failed do's answer stands
// (something may have been delivered: a repeat must not run again) or the
// key is released for a retry.
func (g *Gateway) once(ctx context.Context, key string, do func(context.Context) (map[string]any, error), keep func(*apiError) bool) (map[string]any, error) {
	prev, err := g.beginKey(ctx, key)
	switch {
	case errors.Is(err, errInProgress):
		return nil, &apiError{status: http.StatusConflict, code: codeInProgress, message: "a request with this idempotencyKey is in progress, or its outcome is unknown: retry later"}
	case err != nil:
		return nil, &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, message: err.Error()}
	case prev != nil:
		if prev.Status != http.StatusOK {
			return nil, answerError(*prev)
		}
		return prev.Body, nil
	}
	resp, err := do(ctx)
	rec := recordedAnswer{Status: http.StatusOK, Body: resp}
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, message: err.Error()}
		}
		if !keep(ae) {
			g.idem.abandon(context.WithoutCancel(ctx), key)
			return nil, err
		}
		body := errorAck(ae.code, ae.message)
		for k, v := range ae.extra {
			body[k] = v
		}
		rec = recordedAnswer{Status: ae.status, Body: body}
	}
	g.recordKey(context.WithoutCancel(ctx), key, rec)
	return resp, err
}

// beginKey reserves key: nil, nil when the caller now holds it (and must
// record or abandon it); the recorded answer of an earlier request with it
// (its body with "duplicate": true); errInProgress; or an error whose
// message the caller can show (nothing was delivered).
func (g *Gateway) beginKey(ctx context.Context, key string) (*recordedAnswer, error) {
	prev, err := g.idem.begin(ctx, key)
	switch {
	case errors.Is(err, errInProgress):
		return nil, err
	case err != nil:
		return nil, errors.New("idempotency record unavailable: not delivered")
	case prev == nil:
		return nil, nil
	}
	var rec recordedAnswer
	if err := json.Unmarshal(prev, &rec); err != nil || rec.Body == nil {
		return nil, errors.New("idempotency record unreadable: not delivered")
	}
	rec.Body["duplicate"] = true
	return &rec, nil
}

// recordKey records the answer of a held key. When it cannot, the key
// stays pending until the window ends, so a repeat is told in_progress
// rather than delivered twice.
func (g *Gateway) recordKey(ctx context.Context, key string, rec recordedAnswer) {
	raw, err := json.Marshal(rec)
	if err == nil {
		err = g.idem.finish(ctx, key, raw)
	}
	if err != nil {
		g.log.Warn("roomcast gateway: idempotency answer not recorded", "err", err)
	}
}

// answerError rebuilds the apiError of a recorded failure.
func answerError(rec recordedAnswer) *apiError {
	ae := &apiError{status: rec.Status, code: codeUnavailable, extra: map[string]any{}}
	if e, ok := rec.Body["error"].(map[string]any); ok {
		ae.code, _ = e["code"].(string)
		ae.message, _ = e["message"].(string)
	}
	for k, v := range rec.Body {
		if k != "error" {
			ae.extra[k] = v
		}
	}
	return ae
}

// publishKey scopes a client publish's idempotency key to its namespace and
// user (or, anonymous, its socket): one client cannot answer another's.
func publishKey(s *socketio.Socket, key string) string {
	who := sessionOf(s).User
	if who == "" {
		who = "sid:" + s.ID()
	}
	return "pub:" + s.Namespace().Name() + ":" + who + ":" + key
}

// beginKeyedPublish reserves a client publish's idempotency key. It returns
// true when the publish must run, with p.answer set to record its ack; false
// when it answered already: the recorded ack of an earlier publish with the
// key (with "duplicate": true, nothing delivered), in_progress while that
// one runs, or unavailable when the record cannot be reached (not
// delivered). The publish runs on the read loop for the record's round trip
// only: publishes without a key do not wait for it.
func (g *Gateway) beginKeyedPublish(e *socketio.Event, p *publishRequest) bool {
	key := publishKey(e.Socket(), p.key)
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
	prev, err := g.beginKey(ctx, key)
	cancel()
	switch {
	case errors.Is(err, errInProgress):
		reply(e, errorAck(codeInProgress, "a publish with this idempotencyKey is in progress, or its outcome is unknown: retry later"))
		return false
	case err != nil:
		reply(e, errorAck(codeUnavailable, err.Error()))
		return false
	case prev != nil:
		reply(e, prev.Body)
		return false
	}
	direct := p.user != ""
	p.answer = func(v any, delivered bool) {
		body, _ := v.(map[string]any)
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
		defer cancel()
		if delivered && keepPublishAnswer(body, direct, g.rdb != nil) {
			rec := recordedAnswer{Status: http.StatusOK, Body: body}
			if _, failed := body["error"]; failed {
				rec.Status = http.StatusServiceUnavailable
			}
			g.recordKey(ctx, key, rec)
		} else {
			g.idem.abandon(ctx, key)
		}
		reply(e, v)
	}
	return true
}

// keepPublishAnswer reports whether a keyed publish's ack must stand for
// its key (one the backend refused or could not check released it
// already). Success does. A failure that delivered nothing (refused by a
// quota or as too large) releases the key, as does a direct
// message that Redis did not store: the queue's own per-user record (one
// script with the append) makes its retry deliver at most once. A room
// publish that failed may have been logged, so its answer stands: a retry
// with the key is told the same, never delivered twice.
func keepPublishAnswer(body map[string]any, direct, redis bool) bool {
	e, failed := body["error"].(map[string]any)
	if !failed {
		return true
	}
	switch code, _ := e["code"].(string); code {
	case codeTooLarge, codeQuota, codeForbidden, codeBadRequest, codeRateLimited, codeQueueFull:
		return false
	}
	return !(direct && redis)
}
