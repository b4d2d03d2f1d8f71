package engineio

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// testTimeout bounds every wait in the tests; generous on purpose.
const testTimeout = 10 * time.Second

type message struct {
	data   string
	binary bool
}

type closeEvent struct {
	reason Reason
	err    error
}

// session records what the engine reports about one Conn.
type session struct {
	c        *Conn
	msgs     chan message
	upgrades chan string
	closed   chan closeEvent
	closes   atomic.Int32
}

// harness is an engine behind an httptest server with its own HTTP client.
type harness struct {
	t        testing.TB
	srv      *Server
	hs       *httptest.Server
	client   *http.Client
	url      string // .../engine.io/
	sessions chan *session
	hooks    hooks
}

// hooks customize the harness's handlers.
type hooks struct {
	// onConnect runs in OnConnection after the handlers are installed.
	onConnect func(s *session)
	// onMessage replaces the default echo.
	onMessage func(s *session, data []byte, binary bool)
}

// newHarness starts an echoing engine with cfg (OnConnection is set by the
// harness) and tears everything down in t.Cleanup.
func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	return newHarnessHooks(t, cfg, hooks{})
}

func newHarnessHooks(t testing.TB, cfg Config, hk hooks) *harness {
	t.Helper()
	h := &harness{t: t, sessions: make(chan *session, 64), hooks: hk}
	cfg.OnConnection = func(c *Conn) {
		s := &session{
			c:        c,
			msgs:     make(chan message, 256),
			upgrades: make(chan string, 4),
			closed:   make(chan closeEvent, 4),
		}
		c.SetHandlers(Handlers{
			OnMessage: func(data []byte, binary bool) {
				if h.hooks.onMessage != nil {
					h.hooks.onMessage(s, data, binary)
					return
				}
				s.msgs <- message{string(data), binary}
				f := Frame{Binary: binary, Data: append([]byte{typeMessage}, data...)}
				if binary {
					f.Data = data
				}
				_ = c.Send(f)
			},
			OnUpgrade: func(tr string) { s.upgrades <- tr },
			OnClose: func(reason Reason, err error) {
				s.closes.Add(1)
				s.closed <- closeEvent{reason, err}
			},
		})
		if h.hooks.onConnect != nil {
			h.hooks.onConnect(s)
		}
		h.sessions <- s
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", srv)
	h.hs = httptest.NewServer(mux)
	h.client = &http.Client{Transport: &http.Transport{}, Timeout: testTimeout}
	h.url = h.hs.URL + "/engine.io/"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		h.hs.Close()
		h.client.CloseIdleConnections()
	})
	return h
}

// nextSession returns the session of the latest handshake.
func (h *harness) nextSession(t testing.TB) *session {
	t.Helper()
	select {
	case s := <-h.sessions:
		return s
	case <-time.After(testTimeout):
		t.Fatal("no session was opened")
		return nil
	}
}

// do sends a request and returns its status and body.
func (h *harness) do(t testing.TB, method, query, body string, header http.Header) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+"?"+query, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s ?%s: %v", method, query, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s ?%s: reading body: %v", method, query, err)
	}
	return resp.StatusCode, string(b)
}

type result struct {
	status int
	body   string
	err    error
}

// pollAsync sends a GET from another goroutine (which must not call
// t.Fatal) and delivers its result on the returned channel.
func (h *harness) pollAsync(sid string) <-chan result {
	res := make(chan result, 1)
	go func() {
		resp, err := h.client.Get(h.url + "?EIO=4&transport=polling&sid=" + sid)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	return res
}

// waitPending waits until the session has a GET pending.
func (s *session) waitPending(t testing.TB) {
	t.Helper()
	waitFor(t, "GET to be pending", func() bool {
		s.c.mu.Lock()
		defer s.c.mu.Unlock()
		return s.c.pollActive
	})
}

func (h *harness) poll(t testing.TB, sid string) (int, string) {
	t.Helper()
	return h.do(t, http.MethodGet, "EIO=4&transport=polling&sid="+sid, "", nil)
}

func (h *harness) post(t testing.TB, sid, body string) (int, string) {
	t.Helper()
	return h.do(t, http.MethodPost, "EIO=4&transport=polling&sid="+sid, body, nil)
}

// openInfo is the OPEN packet's payload.
type openInfo struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

func parseOpen(t testing.TB, pkt string) openInfo {
	t.Helper()
	if !strings.HasPrefix(pkt, "0") {
		t.Fatalf("not an OPEN packet: %q", pkt)
	}
	var info openInfo
	dec := json.NewDecoder(strings.NewReader(pkt[1:]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&info); err != nil {
		t.Fatalf("OPEN payload %q: %v", pkt[1:], err)
	}
	return info
}

// openPolling performs a polling handshake and returns the sid and session.
func (h *harness) openPolling(t testing.TB) (openInfo, *session) {
	t.Helper()
	status, body := h.do(t, http.MethodGet, "EIO=4&transport=polling", "", nil)
	if status != http.StatusOK {
		t.Fatalf("handshake: status %d body %q", status, body)
	}
	info := parseOpen(t, body)
	s := h.nextSession(t)
	if s.c.ID() != info.SID {
		t.Fatalf("session id %q, OPEN sid %q", s.c.ID(), info.SID)
	}
	return info, s
}

func (h *harness) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(h.url, "http") + "?" + query
}

// dial opens a websocket to the engine; the connection is closed in cleanup.
func (h *harness) dial(t testing.TB, query string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, h.wsURL(query), &websocket.DialOptions{HTTPClient: h.client})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial ?%s: %v (status %d)", query, err, status)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// openWebSocket performs a websocket-only handshake.
func (h *harness) openWebSocket(t testing.TB) (*websocket.Conn, openInfo, *session) {
	t.Helper()
	ws := h.dial(t, "EIO=4&transport=websocket")
	typ, data := readWS(t, ws)
	if typ != websocket.MessageText {
		t.Fatalf("first message is %v, want text", typ)
	}
	info := parseOpen(t, string(data))
	return ws, info, h.nextSession(t)
}

func readWS(t testing.TB, ws *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, data, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	return typ, data
}

// readWSSkipPings reads the next websocket message that is not a ping,
// answering pings on the way.
func readWSSkipPings(t testing.TB, ws *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	for {
		typ, data := readWS(t, ws)
		if typ == websocket.MessageText && string(data) == "2" {
			writeWS(t, ws, "3")
			continue
		}
		return typ, data
	}
}

func writeWS(t testing.TB, ws *websocket.Conn, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("websocket write %q: %v", text, err)
	}
}

// readClose reads until the websocket fails and returns the error.
func readClose(t testing.TB, ws *websocket.Conn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("websocket was not closed")
			}
			return err
		}
	}
}

func (s *session) waitMessage(t testing.TB) message {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(testTimeout):
		t.Fatal("no message delivered")
		return message{}
	}
}

func (s *session) waitClose(t testing.TB) closeEvent {
	t.Helper()
	select {
	case ev := <-s.closed:
		select {
		case <-s.c.Done():
		case <-time.After(testTimeout):
			t.Fatal("Done not closed after OnClose")
		}
		if n := s.closes.Load(); n != 1 {
			t.Fatalf("OnClose called %d times", n)
		}
		return ev
	case <-time.After(testTimeout):
		t.Fatal("session was not closed")
		return closeEvent{}
	}
}

// pollSkipPings polls until a payload other than a lone ping arrives,
// answering pings.
func (h *harness) pollSkipPings(t testing.TB, sid string) (int, string) {
	t.Helper()
	for {
		status, body := h.poll(t, sid)
		if status == http.StatusOK && body == "2" {
			h.post(t, sid, "3")
			continue
		}
		return status, body
	}
}
