package engineio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestNewValidatesConfig(t *testing.T) {
	onConn := func(*Conn) {}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{OnConnection: onConn}, true},
		{"no OnConnection", Config{}, false},
		{"negative ping interval", Config{OnConnection: onConn, PingInterval: -time.Second}, false},
		{"sub-millisecond timeout", Config{OnConnection: onConn, PingTimeout: time.Microsecond}, false},
		{"negative upgrade timeout", Config{OnConnection: onConn, UpgradeTimeout: -1}, false},
		{"negative max payload", Config{OnConnection: onConn, MaxPayload: -1}, false},
		{"negative queue", Config{OnConnection: onConn, MaxQueueBytes: -1}, false},
		{"unknown transport", Config{OnConnection: onConn, Transports: []string{"polling", "webtransport"}}, false},
		{"websocket only", Config{OnConnection: onConn, Transports: []string{"websocket"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if tt.ok {
				if err != nil || s == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New error = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	s, err := New(Config{OnConnection: func(*Conn) {}})
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.PingInterval != 25*time.Second || c.PingTimeout != 20*time.Second || c.UpgradeTimeout != 10*time.Second ||
		c.MaxPayload != 1_000_000 || c.MaxQueueBytes != 4<<20 || len(c.Transports) != 2 || c.Logger == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if !s.allowPolling || !s.allowWebSocket || !s.upgradesAllowed {
		t.Fatal("both transports and upgrades should be allowed by default")
	}
}

func TestHandshakePolling(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	status, body := h.do(t, http.MethodGet, "EIO=4&transport=polling", "", nil)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	info := parseOpen(t, body)
	if len(info.SID) != 20 || strings.ContainsAny(info.SID, "+/=") {
		t.Errorf("sid %q is not 20 URL-safe characters", info.SID)
	}
	if len(info.Upgrades) != 1 || info.Upgrades[0] != "websocket" {
		t.Errorf("upgrades = %v, want [websocket]", info.Upgrades)
	}
	if info.PingInterval != 300 || info.PingTimeout != 200 || info.MaxPayload != 1_000_000 {
		t.Errorf("OPEN = %+v", info)
	}
	s := h.nextSession(t)
	if s.c.Transport() != "polling" {
		t.Errorf("Transport() = %q", s.c.Transport())
	}
	if got := s.c.Request().URL.Query().Get("transport"); got != "polling" {
		t.Errorf("Request().URL transport = %q", got)
	}
	if s.c.Request().RemoteAddr == "" {
		t.Error("Request().RemoteAddr is empty")
	}
	if h.srv.Count() != 1 {
		t.Errorf("Count() = %d, want 1", h.srv.Count())
	}

	// Two handshakes never share a sid.
	info2, _ := h.openPolling(t)
	if info2.SID == info.SID {
		t.Fatal("two sessions got the same sid")
	}
}

func TestHandshakeWebSocket(t *testing.T) {
	h := newHarness(t, Config{})
	ws, info, s := h.openWebSocket(t)
	if len(info.Upgrades) != 0 {
		t.Errorf("upgrades = %v, want []", info.Upgrades)
	}
	if info.SID != s.c.ID() || s.c.Transport() != "websocket" {
		t.Errorf("sid %q transport %q", info.SID, s.c.Transport())
	}
	writeWS(t, ws, "4hi")
	if typ, data := readWSSkipPings(t, ws); typ != websocket.MessageText || string(data) != "4hi" {
		t.Fatalf("echo = %v %q", typ, data)
	}
}

func TestHandshakeSendsWhatOnConnectionQueued(t *testing.T) {
	h := newHarnessHooks(t, Config{}, hooks{onConnect: func(s *session) {
		if err := s.c.Send(TextFrame("welcome"), BinaryFrame([]byte{9})); err != nil {
			t.Errorf("Send in OnConnection: %v", err)
		}
	}})
	status, body := h.do(t, http.MethodGet, "EIO=4&transport=polling", "", nil)
	parts := strings.Split(body, "\x1e")
	if status != http.StatusOK || len(parts) != 3 || parts[1] != "4welcome" || parts[2] != "bCQ==" {
		t.Fatalf("handshake = %d %q, want OPEN, 4welcome, bCQ==", status, body)
	}
	parseOpen(t, parts[0])

	ws := h.dial(t, "EIO=4&transport=websocket")
	if _, data := readWS(t, ws); data[0] != '0' {
		t.Fatalf("first websocket message %q, want OPEN", data)
	}
	if typ, data := readWS(t, ws); typ != websocket.MessageText || string(data) != "4welcome" {
		t.Fatalf("second websocket message %v %q", typ, data)
	}
	if typ, data := readWS(t, ws); typ != websocket.MessageBinary || string(data) != "\x09" {
		t.Fatalf("third websocket message %v %q", typ, data)
	}
}

func TestErrorCodes(t *testing.T) {
	h := newHarness(t, Config{})
	info, _ := h.openPolling(t)
	tests := []struct {
		name   string
		method string
		query  string
		header http.Header
		status int
		code   ErrorCode
	}{
		{"missing EIO", "GET", "transport=polling", nil, 400, CodeUnsupportedProtocol},
		{"EIO 3", "GET", "EIO=3&transport=polling", nil, 400, CodeUnsupportedProtocol},
		{"EIO abc", "GET", "EIO=abc&transport=polling", nil, 400, CodeUnsupportedProtocol},
		{"missing transport", "GET", "EIO=4", nil, 400, CodeUnknownTransport},
		{"unknown transport", "GET", "EIO=4&transport=abc", nil, 400, CodeUnknownTransport},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", nil, 400, CodeUnknownSID},
		{"unknown sid POST", "POST", "EIO=4&transport=polling&sid=nope", nil, 400, CodeUnknownSID},
		{"handshake POST", "POST", "EIO=4&transport=polling", nil, 400, CodeBadHandshakeMethod},
		{"handshake PUT", "PUT", "EIO=4&transport=polling", nil, 400, CodeBadHandshakeMethod},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", nil, 400, CodeBadRequest},
		{"session GET as websocket", "GET", "EIO=4&transport=websocket&sid=" + info.SID, nil, 400, CodeBadRequest},
		{"session PUT", "PUT", "EIO=4&transport=polling&sid=" + info.SID, nil, 400, CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.do(t, tt.method, tt.query, "", tt.header)
			if status != tt.status {
				t.Fatalf("status %d, want %d (body %q)", status, tt.status, body)
			}
			var got struct {
				Code    ErrorCode `json:"code"`
				Message string    `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if got.Code != tt.code || got.Message != tt.code.Message() {
				t.Fatalf("body = %+v, want code %d %q", got, tt.code, tt.code.Message())
			}
		})
	}
	// None of the refusals hurt the session.
	if status, body := h.post(t, info.SID, "4still here"); status != 200 || body != "ok" {
		t.Fatalf("POST after refusals = %d %q", status, body)
	}
}

func TestErrorContentType(t *testing.T) {
	h := newHarness(t, Config{})
	resp, err := h.client.Get(h.url + "?EIO=3&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
}

func TestWebSocketHandshakeRefused(t *testing.T) {
	h := newHarness(t, Config{})
	tests := []struct {
		name   string
		query  string
		status int
	}{
		{"missing EIO", "transport=websocket", 400},
		{"bad EIO", "EIO=abc&transport=websocket", 400},
		{"missing transport", "EIO=4", 400},
		{"unknown transport", "EIO=4&transport=abc", 400},
		{"polling over websocket", "EIO=4&transport=polling", 400},
		{"unknown sid", "EIO=4&transport=websocket&sid=nope", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, h.wsURL(tt.query), &websocket.DialOptions{HTTPClient: h.client})
			if err == nil {
				ws.CloseNow()
				t.Fatal("dial succeeded")
			}
			if resp == nil || resp.StatusCode != tt.status {
				t.Fatalf("response %v, want status %d", resp, tt.status)
			}
		})
	}
}

func TestTransportsConfig(t *testing.T) {
	t.Run("websocket only", func(t *testing.T) {
		h := newHarness(t, Config{Transports: []string{"websocket"}})
		if status, _ := h.do(t, "GET", "EIO=4&transport=polling", "", nil); status != 400 {
			t.Fatalf("polling handshake status %d, want 400", status)
		}
		h.openWebSocket(t)
	})
	t.Run("polling only", func(t *testing.T) {
		h := newHarness(t, Config{Transports: []string{"polling"}})
		info, _ := h.openPolling(t)
		if len(info.Upgrades) != 0 {
			t.Fatalf("upgrades = %v, want []", info.Upgrades)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_, resp, err := websocket.Dial(ctx, h.wsURL("EIO=4&transport=websocket"), &websocket.DialOptions{HTTPClient: h.client})
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Fatalf("websocket dial: %v, %v; want 400", err, resp)
		}
	})
	t.Run("upgrades disabled", func(t *testing.T) {
		h := newHarness(t, Config{DisableUpgrades: true})
		info, _ := h.openPolling(t)
		if len(info.Upgrades) != 0 {
			t.Fatalf("upgrades = %v, want []", info.Upgrades)
		}
		ws := h.dial(t, "EIO=4&transport=websocket&sid="+info.SID)
		if err := readClose(t, ws); err == nil {
			t.Fatal("probe websocket was not closed")
		}
		if status, body := h.post(t, info.SID, "4still polling"); status != 200 || body != "ok" {
			t.Fatalf("POST = %d %q", status, body)
		}
	})
}

func TestAllowRequestTooMany(t *testing.T) {
	h := newHarness(t, Config{AllowRequest: func(r *http.Request) error {
		return fmt.Errorf("over the limit: %w", &TooManyRequestsError{RetryAfter: 1500 * time.Millisecond})
	}})
	resp, err := h.client.Get(h.url + "?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || string(body) != `{"code":7,"message":"Too many requests"}` {
		t.Fatalf("refused handshake = %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Retry-After"); got != "2" {
		t.Fatalf("Retry-After = %q, want 2", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, wresp, err := websocket.Dial(ctx, h.wsURL("EIO=4&transport=websocket"), &websocket.DialOptions{HTTPClient: h.client})
	if err == nil || wresp == nil || wresp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("websocket dial: %v, %v; want 429", err, wresp)
	}
}

func TestAllowRequest(t *testing.T) {
	h := newHarness(t, Config{AllowRequest: func(r *http.Request) error {
		if r.URL.Query().Get("token") != "good" {
			return errors.New("bad token")
		}
		return nil
	}})
	status, body := h.do(t, "GET", "EIO=4&transport=polling&token=bad", "", nil)
	if status != http.StatusForbidden || body != `{"code":4,"message":"Forbidden"}` {
		t.Fatalf("refused handshake = %d %q", status, body)
	}
	if strings.Contains(body, "bad token") {
		t.Fatal("the AllowRequest error leaked into the response")
	}
	if status, _ := h.do(t, "GET", "EIO=4&transport=polling&token=good", "", nil); status != 200 {
		t.Fatalf("allowed handshake status %d", status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, h.wsURL("EIO=4&transport=websocket&token=bad"), &websocket.DialOptions{HTTPClient: h.client})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("websocket dial: %v, %v; want 403", err, resp)
	}
}

func TestCheckOriginAndCORS(t *testing.T) {
	h := newHarness(t, Config{CheckOrigin: func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return o == "" || o == "https://app.example"
	}})
	good := http.Header{"Origin": {"https://app.example"}}
	bad := http.Header{"Origin": {"https://evil.example"}}

	// Refused origin: 403 Forbidden, for handshakes and preflights alike.
	for _, method := range []string{"GET", "OPTIONS"} {
		status, body := h.do(t, method, "EIO=4&transport=polling", "", bad)
		if status != http.StatusForbidden || body != `{"code":4,"message":"Forbidden"}` {
			t.Fatalf("%s with a refused origin = %d %q", method, status, body)
		}
	}

	// Allowed origin: the CORS headers name it and allow credentials.
	req, _ := http.NewRequest("GET", h.url+"?EIO=4&transport=polling", nil)
	req.Header = good.Clone()
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("allowed origin: %d %v", resp.StatusCode, resp.Header)
	}

	// Preflight.
	req, _ = http.NewRequest("OPTIONS", h.url+"?EIO=4&transport=polling", nil)
	req.Header = good.Clone()
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err = h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent ||
		resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	// Websocket handshakes are checked too.
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, resp, err = websocket.Dial(ctx, h.wsURL("EIO=4&transport=websocket"), &websocket.DialOptions{HTTPClient: h.client, HTTPHeader: bad})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("websocket with a refused origin: %v, %v; want 403", err, resp)
	}
	ws, _, err := websocket.Dial(ctx, h.wsURL("EIO=4&transport=websocket"), &websocket.DialOptions{HTTPClient: h.client, HTTPHeader: good})
	if err != nil {
		t.Fatalf("websocket with an allowed origin: %v", err)
	}
	ws.CloseNow()
}
