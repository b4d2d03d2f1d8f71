package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/internal/parser"
	"github.com/roomcast/roomcast/internal/ratelimit"
	"github.com/roomcast/roomcast/queue"
)

// One-way Server-Sent Events (docs/PROTOCOL.md, "Server-Sent Events"):
//
//	GET /sse?token=<JWT>&rooms=a,b[&namespace=/chat]
//
// streams the user's durable queue (the messages of its namespace) and the
// broadcasts to the rooms the token may join, each as an SSE event whose
// id is the offset "<user stream ID>~<broadcast log position>" (the form a
// Socket.IO client's offsets have). A client that reconnects with
// Last-Event-ID (EventSource does it by itself) is sent what it missed
// after that offset, on any node, then live messages: the user part from
// queue.Replay, the room part read from the log after a live subscription
// to the node's one tail of the namespace (sseHub), de-duplicated by
// position — the same gap-free handoff recovery does for sockets.

const (
	// sseHeartbeat is how often an idle stream gets a comment line, so
	// that proxies keep it open and a dead client is noticed.
	sseHeartbeat = 15 * time.Second
	// sseRetry is the reconnection delay suggested to EventSource.
	sseRetry = 1000 // ms
)

// sseItem is one message for a stream: from the user's queue (user set)
// or the broadcast log (log set).
type sseItem struct {
	user  *queue.Message
	log   *broadcastlog.Entry
	bytes int
}

// sseStream is one client's stream: producers (the queue's delivery, the
// namespace's tail) push without blocking; the request's goroutine writes.
type sseStream struct {
	rooms  []string
	maxLen int // queued bytes beyond which the client is too slow

	mu     sync.Mutex
	queue  []sseItem
	queued int
	err    error // set once: the stream ends with it
	wake   chan struct{}
}

var errSSESlow = errors.New("slow consumer")

func (s *sseStream) push(it sseItem) {
	s.mu.Lock()
	if s.err == nil {
		if s.queued+it.bytes > s.maxLen {
			s.err, s.queue = errSSESlow, nil
		} else {
			s.queue = append(s.queue, it)
			s.queued += it.bytes
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sseStream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sseStream) take() ([]sseItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue, s.queued = nil, 0
	return q, s.err
}

// sseHub runs one broadcast log tail per namespace while streams of the
// namespace are open on this node, and hands each entry to the streams in
// its rooms.
type sseHub struct {
	g      *Gateway
	ctx    context.Context // ends at Shutdown: every stream closes
	cancel context.CancelFunc

	mu   sync.Mutex
	nsps map[string]*sseTail
}

type sseTail struct {
	streams map[*sseStream]struct{}
	stop    func()
}

func newSSEHub(g *Gateway) *sseHub {
	ctx, cancel := context.WithCancel(context.Background())
	return &sseHub{g: g, ctx: ctx, cancel: cancel, nsps: make(map[string]*sseTail)}
}

// subscribe adds s to nsp's tail, starting it at the log's end if it is
// the first; every entry the tail delivers from then on reaches s.
func (h *sseHub) subscribe(ctx context.Context, nsp string, s *sseStream) (func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.nsps[nsp]
	if t == nil {
		last, err := h.g.blog.Last(ctx, nsp)
		if err != nil {
			return nil, err
		}
		t = &sseTail{streams: make(map[*sseStream]struct{})}
		stop, err := h.g.blog.Tail(h.ctx, nsp, last, func(entries []broadcastlog.Entry, err error) {
			h.deliver(nsp, t, entries, err)
		})
		if err != nil {
			return nil, err
		}
		t.stop = stop
		h.nsps[nsp] = t
	}
	t.streams[s] = struct{}{}
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(t.streams, s)
		if len(t.streams) == 0 && h.nsps[nsp] == t {
			delete(h.nsps, nsp)
			t.stop()
		}
	}, nil
}

func (h *sseHub) deliver(nsp string, t *sseTail, entries []broadcastlog.Entry, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		// The tail lost entries: its streams reconnect and resume from
		// their offsets (or are told they cannot).
		for s := range t.streams {
			s.fail(err)
		}
		return
	}
	for i := range entries {
		e := &entries[i]
		size := len(e.Data)
		for _, a := range e.Attachments {
			size += len(a)
		}
		for s := range t.streams {
			if e.Selects(s.rooms) {
				s.push(sseItem{log: e, bytes: size})
			}
		}
	}
}

func (h *sseHub) close() {
	if h != nil {
		h.cancel()
	}
}

// serveSSE is GET /sse.
func (g *Gateway) serveSSE(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		sseError(w, http.StatusMethodNotAllowed, "method_not_allowed", "GET only")
		return
	}
	if !g.checkOrigin(r) {
		sseError(w, http.StatusForbidden, "forbidden", "origin not allowed")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Add("Vary", "Origin")
	}
	q := r.URL.Query()
	tok := q.Get("token")
	if h := r.Header.Get("Authorization"); tok == "" && strings.HasPrefix(h, "Bearer ") {
		tok = strings.TrimPrefix(h, "Bearer ")
	}
	if tok == "" || g.verifier == nil {
		sseError(w, http.StatusUnauthorized, "unauthorized", "a token is required")
		return
	}
	claims, err := g.verifier.VerifyContext(r.Context(), tok)
	if err != nil || claims.Subject == "" {
		sseError(w, http.StatusUnauthorized, "unauthorized", "invalid token")
		return
	}
	nsp := q.Get("namespace")
	if nsp == "" {
		nsp = "/"
	}
	if nsp != "/" && !slices.Contains(g.cfg.Namespaces, nsp) {
		sseError(w, http.StatusNotFound, "invalid_namespace", "no such namespace")
		return
	}
	var rooms []string
	for _, room := range strings.Split(q.Get("rooms"), ",") {
		if room = strings.TrimSpace(room); room == "" {
			continue
		}
		if strings.HasPrefix(room, userRoomPrefix) || !claims.CanJoin(room) {
			sseError(w, http.StatusForbidden, "forbidden", "the token may not join "+room)
			return
		}
		rooms = append(rooms, room)
	}
	user := claims.Subject

	release, ok := g.acquireSSE(w, r, user)
	if !ok {
		return
	}
	defer release()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stopAtShutdown := context.AfterFunc(g.sse.ctx, cancel)
	defer stopAtShutdown()

	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = q.Get("lastEventId")
	}
	st := &sseStream{rooms: rooms, maxLen: g.cfg.Engine.MaxQueueBytes, wake: make(chan struct{}, 1)}
	out := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: g.cfg.Engine.WriteTimeout}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	out.printf("retry: %d\n\n", sseRetry)

	userPos, logPos, resumed := splitSSEOffset(last)
	rctx, rcancel := context.WithTimeout(ctx, g.cfg.EventTimeout)
	defer rcancel()
	var notRecovered []string

	// Rooms: subscribe to the namespace's tail first, then read what the
	// log holds after the client's position; the tail's entries are
	// de-duplicated by position when written.
	if len(rooms) > 0 {
		unsub, err := g.sse.subscribe(rctx, nsp, st)
		if err != nil {
			out.comment("unavailable")
			return
		}
		defer unsub()
	}
	if !resumed || logPos == "" {
		if logPos, err = g.blog.Last(rctx, nsp); err != nil {
			out.comment("unavailable")
			return
		}
	} else if len(rooms) > 0 {
		if logPos, err = g.sseLogBacklog(rctx, out, nsp, rooms, userPos, logPos); errors.Is(err, broadcastlog.ErrExpired) || errors.Is(err, broadcastlog.ErrInvalidPosition) {
			notRecovered = append(notRecovered, "rooms")
			if logPos, err = g.blog.Last(rctx, nsp); err != nil {
				out.comment("unavailable")
				return
			}
		} else if err != nil {
			out.comment("unavailable")
			return
		}
	}

	// The user's queue: queue.Replay sends the backlog after userPos, then
	// live messages, into the stream.
	if !resumed || userPos == "" {
		if userPos, err = g.store.Last(rctx, user); err != nil {
			out.comment("unavailable")
			return
		}
	}
	pushUser := func(m queue.Message) error {
		if m.Namespace == nsp {
			st.push(sseItem{user: &m, bytes: m.Size()})
		}
		return nil
	}
	stop, err := queue.Replay(ctx, g.store, user, userPos, 0, pushUser, st.fail)
	if errors.Is(err, queue.ErrOffsetExpired) || errors.Is(err, queue.ErrInvalidOffset) {
		notRecovered = append(notRecovered, "user")
		if userPos, err = g.store.Last(rctx, user); err == nil {
			stop, err = queue.Replay(ctx, g.store, user, userPos, 0, pushUser, st.fail)
		}
	}
	if err != nil {
		out.comment("unavailable")
		return
	}
	defer stop()
	rcancel()
	if resumed && len(notRecovered) > 0 {
		// As roomcast:not-recovered for sockets: what was missed is gone.
		data, _ := json.Marshal(map[string]any{"reason": "expired", "parts": notRecovered})
		out.event(userPos+"~"+logPos, "roomcast:not-recovered", data)
	}
	if !out.flush() {
		return
	}

	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			out.comment("")
		case <-st.wake:
			items, err := st.take()
			for _, it := range items {
				switch {
				case it.user != nil:
					userPos = it.user.ID
					out.message(userPos+"~"+logPos, it.user.Event, it.user.Data, it.user.Attachments)
				case it.log != nil:
					if p, err := broadcastlog.ParsePosition(it.log.ID); err != nil || !follows(p, logPos) {
						continue // already sent from the backlog
					}
					logPos = it.log.ID
					sseLogEvent(out, userPos+"~"+logPos, it.log)
				}
			}
			if err != nil {
				out.comment(err.Error())
				out.flush()
				return
			}
		}
		if !out.flush() {
			return
		}
	}
}

// sseLogBacklog writes the entries of the client's rooms after logPos and
// returns the position of the last entry read.
func (g *Gateway) sseLogBacklog(ctx context.Context, out *sseWriter, nsp string, rooms []string, userPos, logPos string) (string, error) {
	for {
		entries, err := g.blog.Read(ctx, nsp, logPos, 0)
		if err != nil {
			return logPos, err
		}
		if len(entries) == 0 {
			return logPos, nil
		}
		for i := range entries {
			e := &entries[i]
			logPos = e.ID
			if e.Selects(rooms) {
				sseLogEvent(out, userPos+"~"+logPos, e)
			}
		}
		if !out.flush() {
			return logPos, context.Canceled
		}
	}
}

// follows reports whether p follows the position s.
func follows(p broadcastlog.Position, s string) bool {
	q, err := broadcastlog.ParsePosition(s)
	return err != nil || q.Less(p)
}

// splitSSEOffset splits a Last-Event-ID "<user>~<log>" into its parts.
func splitSSEOffset(id string) (userPos, logPos string, ok bool) {
	if id == "" {
		return "", "", false
	}
	userPos, logPos, _ = strings.Cut(id, "~")
	return userPos, logPos, true
}

// sseLogEvent writes a logged broadcast: its data is [event, ...args].
func sseLogEvent(out *sseWriter, id string, e *broadcastlog.Entry) {
	var head []json.RawMessage
	if err := json.Unmarshal(e.Data, &head); err != nil || len(head) == 0 {
		return
	}
	var event string
	if json.Unmarshal(head[0], &event) != nil {
		return
	}
	args, _ := json.Marshal(head[1:])
	out.message(id, event, args, e.Attachments)
}

// acquireSSE counts the stream against its user's and client IP's
// connection caps, as a socket is.
func (g *Gateway) acquireSSE(w http.ResponseWriter, r *http.Request, user string) (func(), bool) {
	l := g.limits
	if l == nil || l.conns == nil {
		return func() {}, true
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.EventTimeout)
	defer cancel()
	var releases []func()
	releaseAll := func() {
		for _, rel := range releases {
			rel()
		}
	}
	for _, c := range []struct {
		key, limit string
		max        int
	}{{userRoom(user), "conns_per_user", l.maxUser}, {"ip:" + l.clientIP(r), "conns_per_ip", l.maxIP}} {
		if c.max < 0 {
			continue
		}
		rel, err := l.conns.Acquire(ctx, c.key, c.max)
		if errors.Is(err, ratelimit.ErrTooMany) {
			releaseAll()
			g.metrics.LimitRefused(c.limit)
			sseError(w, http.StatusTooManyRequests, codeTooManyConns, "too many connections")
			return nil, false
		}
		if err == nil {
			releases = append(releases, rel)
		}
	}
	return releaseAll, true
}

func sseError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorAck(code, message))
}

// sseWriter writes the event stream, each write bounded by timeout.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
	failed  bool
}

func (o *sseWriter) printf(format string, v ...any) {
	o.buf = fmt.Appendf(o.buf, format, v...)
}

func (o *sseWriter) comment(text string) {
	o.buf = append(o.buf, ':')
	if text != "" {
		o.buf = append(o.buf, ' ')
		o.buf = append(o.buf, strings.ReplaceAll(text, "\n", " ")...)
	}
	o.buf = append(o.buf, '\n', '\n')
}

// message writes one event: args is the JSON array of its arguments,
// binary ones as placeholders for attachments, written as {"$binary"}.
func (o *sseWriter) message(id, event string, args json.RawMessage, attachments [][]byte) {
	data := []byte(args)
	if len(attachments) > 0 {
		vals, err := parser.UnmarshalArgs(args, attachments)
		if err != nil {
			return
		}
		if data, err = json.Marshal(encodeBinary(vals)); err != nil {
			return
		}
	}
	o.event(id, event, data)
}

func (o *sseWriter) event(id, event string, data []byte) {
	o.buf = append(o.buf, "id: "...)
	o.buf = append(o.buf, id...)
	o.buf = append(o.buf, "\nevent: "...)
	o.buf = append(o.buf, strings.NewReplacer("\n", " ", "\r", " ").Replace(event)...)
	o.buf = append(o.buf, "\ndata: "...)
	o.buf = append(o.buf, data...) // JSON: no raw newlines
	o.buf = append(o.buf, '\n', '\n')
}

// flush writes what is buffered; false once the client is gone.
func (o *sseWriter) flush() bool {
	if o.failed {
		return false
	}
	if len(o.buf) == 0 {
		return true
	}
	_ = o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	_, err := o.w.Write(o.buf)
	if err == nil {
		err = o.rc.Flush()
	}
	o.buf = o.buf[:0]
	if err != nil {
		o.failed = true
		return false
	}
	return true
}
