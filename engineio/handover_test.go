package engineio

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// movable lets a harness's sessions be handed over: stop, then state.
func movable(state string) hooks {
	return hooks{onConnect: func(s *session) {
		h := *s.c.handlers.Load()
		h.OnHandover = func(_ context.Context, stop func() error) ([]byte, error) {
			if err := stop(); err != nil {
				return nil, err
			}
			return []byte(state), nil
		}
		s.c.SetHandlers(h)
	}}
}

// directSource reaches the owner's Conn in process, through the wire
// encoding.
type directSource struct {
	c        *Conn
	beginErr error
}

func (d *directSource) Begin(context.Context) error {
	if d.beginErr != nil {
		return d.beginErr
	}
	return d.c.BeginHandover()
}

func (d *directSource) Take(ctx context.Context) (*Handover, error) {
	h, err := d.c.Handover(ctx)
	if err != nil {
		return nil, err
	}
	b, err := h.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return DecodeHandover(b, 1<<20)
}

// serveHandover mounts newNode's ServeHandover for session sid from src.
func serveHandover(t *testing.T, newNode *harness, sid string, src HandoverSource) (url string, handled chan bool) {
	handled = make(chan bool, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled <- newNode.srv.ServeHandover(w, r, sid, src)
	}))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/?EIO=4&transport=websocket&sid=" + sid, handled
}

// TestHandoverMovesSession: a polling session's upgrade served by another
// node moves the session there: the pending GET gets its noop after the
// probe, the frames queued while the client paused come first on the
// websocket, the session keeps its sid and the layer above's state, and
// the owner's session ends with ReasonHandover, refusing later sends.
func TestHandoverMovesSession(t *testing.T) {
	owner := newHarnessHooks(t, Config{}, movable(`{"sockets":1}`))
	newNode := newHarness(t, Config{})
	info, s := owner.openPolling(t)
	url, handled := serveHandover(t, newNode, info.SID, &directSource{c: s.c})

	pending := owner.pollAsync(info.SID)
	s.waitPending(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	writeWS(t, ws, "2probe")
	if _, m := readWS(t, ws); string(m) != "3probe" {
		t.Fatalf("probe answered %q", m)
	}
	if r := <-pending; r.err != nil || r.status != http.StatusOK || r.body != "6" {
		t.Fatalf("pending GET: %+v, want a noop", r)
	}
	// Paused: these stay queued on the owner.
	if err := s.c.Send(TextFrame("queued-1"), Frame{Binary: true, Data: []byte{1, 2}}, Frame{Data: []byte("4a"), Tail: []byte("b"), End: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	writeWS(t, ws, "5")
	for _, want := range []string{"4queued-1", "\x01\x02", "4abc"} {
		if _, m := readWSSkipPings(t, ws); string(m) != want {
			t.Fatalf("got %q, want %q", m, want)
		}
	}
	if !<-handled {
		t.Fatal("ServeHandover reported the upgrade unhandled")
	}
	if ev := s.waitClose(t); ev.reason != ReasonHandover {
		t.Fatalf("owner's session closed with %q", ev.reason)
	}
	if err := s.c.Send(TextFrame("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after the handover: %v, want ErrClosed", err)
	}
	moved := newNode.nextSession(t)
	if moved.c.ID() != info.SID || string(moved.c.Adopted()) != `{"sockets":1}` || moved.c.Transport() != "websocket" {
		t.Fatalf("moved session: sid %q, state %q, transport %s", moved.c.ID(), moved.c.Adopted(), moved.c.Transport())
	}
	writeWS(t, ws, "4echo")
	if _, m := readWSSkipPings(t, ws); string(m) != "4echo" {
		t.Fatalf("echo on the new node: %q", m)
	}
	if owner.srv.Count() != 0 || newNode.srv.Count() != 1 {
		t.Fatalf("sessions: owner %d, new node %d", owner.srv.Count(), newNode.srv.Count())
	}
}

// TestHandoverRefusals: only an open polling session whose layer above
// can move is handed over, one upgrade at a time; a layer that refuses
// before stopping leaves the session working.
func TestHandoverRefusals(t *testing.T) {
	plain := newHarness(t, Config{})
	_, ps := plain.openPolling(t)
	if err := ps.c.BeginHandover(); !errors.Is(err, ErrHandoverRefused) {
		t.Fatalf("BeginHandover without OnHandover: %v", err)
	}

	owner := newHarnessHooks(t, Config{}, movable(`{}`))
	_, _, wsSession := owner.openWebSocket(t)
	if err := wsSession.c.BeginHandover(); !errors.Is(err, ErrHandoverRefused) {
		t.Fatalf("BeginHandover on a websocket session: %v", err)
	}
	_, s := owner.openPolling(t)
	if _, err := s.c.Handover(context.Background()); !errors.Is(err, ErrHandoverRefused) {
		t.Fatalf("Handover before BeginHandover: %v", err)
	}
	if err := s.c.BeginHandover(); err != nil {
		t.Fatal(err)
	}
	if err := s.c.BeginHandover(); !errors.Is(err, ErrHandoverRefused) {
		t.Fatalf("a second BeginHandover: %v", err)
	}

	refusing := newHarnessHooks(t, Config{}, hooks{onConnect: func(s *session) {
		h := *s.c.handlers.Load()
		h.OnHandover = func(context.Context, func() error) ([]byte, error) { return nil, errors.New("busy") }
		s.c.SetHandlers(h)
	}})
	rinfo, rs := refusing.openPolling(t)
	if err := rs.c.BeginHandover(); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.c.Handover(context.Background()); err == nil || err.Error() != "busy" {
		t.Fatalf("Handover refused by the layer above: %v", err)
	}
	if code, body := refusing.post(t, rinfo.SID, "4still here"); code != http.StatusOK || body != "ok" {
		t.Fatalf("POST after a refused handover: %d %q", code, body)
	}
	if m := rs.waitMessage(t); m.data != "still here" {
		t.Fatalf("message after a refused handover: %q", m.data)
	}
}

// TestHandoverExpires: a handover that is begun and never taken gives the
// session back to polling after UpgradeTimeout; a local upgrade then works.
func TestHandoverExpires(t *testing.T) {
	owner := newHarnessHooks(t, Config{UpgradeTimeout: 100 * time.Millisecond}, movable(`{}`))
	info, s := owner.openPolling(t)
	if err := s.c.BeginHandover(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the handover to expire", func() bool {
		s.c.mu.Lock()
		defer s.c.mu.Unlock()
		return !s.c.upgrading && s.c.handover == nil
	})
	if _, err := s.c.Handover(context.Background()); !errors.Is(err, ErrHandoverRefused) {
		t.Fatalf("Handover after expiry: %v", err)
	}
	ws := owner.dial(t, "EIO=4&transport=websocket&sid="+info.SID)
	writeWS(t, ws, "2probe")
	if _, m := readWS(t, ws); string(m) != "3probe" {
		t.Fatalf("local probe after the expiry: %q", m)
	}
}

// TestServeHandoverUnsupported: an owner that does not hand over leaves
// the request untouched, for the caller to forward.
func TestServeHandoverUnsupported(t *testing.T) {
	newNode := newHarness(t, Config{})
	r := httptest.NewRequest(http.MethodGet, "/?EIO=4&transport=websocket&sid=x", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	w := httptest.NewRecorder()
	if newNode.srv.ServeHandover(w, r, "x", &directSource{beginErr: ErrHandoverUnsupported}) {
		t.Fatal("reported handled")
	}
	if w.Code != http.StatusOK || w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Fatalf("wrote %d %q %v", w.Code, w.Body.String(), w.Header())
	}
}

func TestDecodeHandoverRefusals(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"not JSON", `{`},
		{"empty text frame", `{"frames":[{"data":""}],"state":null}`},
		{"over the byte cap", `{"frames":[{"data":"` + strings.Repeat("QUFB", 10) + `"}],"state":null}`},
		{"state not JSON", `{"frames":[],"state":x}`},
	} {
		if _, err := DecodeHandover([]byte(tc.body), 16); err == nil {
			t.Errorf("%s: decoded", tc.name)
		}
	}
	h, err := DecodeHandover([]byte(`{"frames":[{"binary":true,"data":"AAE="},{"data":"NGE="}],"state":{"a":1}}`), 16)
	if err != nil || len(h.Frames) != 2 || !h.Frames[0].Binary || string(h.Frames[1].Data) != "4a" || string(h.State) != `{"a":1}` {
		t.Fatalf("decoded %+v, %v", h, err)
	}
}

func FuzzDecodeHandover(f *testing.F) {
	f.Add([]byte(`{"frames":[{"binary":true,"data":"AAE="},{"data":"NGE="}],"state":{"a":1}}`))
	f.Add([]byte(`{"frames":[],"state":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHandover(b, 1<<10)
		if err != nil {
			return
		}
		total := 0
		for _, fr := range h.Frames {
			total += len(fr.Data)
			if !fr.Binary && len(fr.Data) == 0 {
				t.Fatal("empty text frame decoded")
			}
		}
		if total > 1<<10 {
			t.Fatalf("%d bytes decoded over the cap", total)
		}
		again, err := h.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeHandover(again, 1<<10); err != nil {
			t.Fatalf("re-encoded handover refused: %v", err)
		}
	})
}
