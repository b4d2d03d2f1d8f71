package engineio

// Session handover (docs/ARCHITECTURE.md, "Polling without sticky
// sessions"): behind a load balancer without stickiness, a polling
// session's websocket upgrade can reach a node that does not hold the
// session. That node (the new one) answers the upgrade itself and takes
// the session over from the node that holds it (the owner), so the client
// ends up on the node that holds its websocket:
//
//	client            new node (ServeHandover)          owner (Conn)
//	GET ws?sid  ----> Begin ------------------------->  BeginHandover: the
//	                                                     pending GET gets a noop
//	"2probe"    ----> "3probe" (the client pauses polling)
//	"5"         ----> Take -------------------------->  Handover: with the client
//	                                                     paused, the layer above
//	                                                     stops the session (the
//	                                                     queue is kept) and says
//	                  <---------- frames + state -----   what it needs; the session
//	                  a Conn with the same sid on the    closes (ReasonHandover)
//	                  websocket: the kept frames first,
//	                  then the layer above restores its
//	                  sockets from the state
//
// The engine moves the session and its unsent frames; what the layer above
// keeps (the Socket.IO sockets) travels as an opaque state. How the two
// nodes talk is the caller's (HandoverSource).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Handover is a session on its way to another node: the frames it had
// queued and not sent, in order, and the state of the layer above.
type Handover struct {
	Frames []Frame
	State  []byte
}

// handoverWire is Handover's JSON form: each frame's bytes whole.
type handoverWire struct {
	Frames []handoverFrame `json:"frames"`
	State  json.RawMessage `json:"state"`
}

type handoverFrame struct {
	Binary bool   `json:"binary,omitempty"`
	Data   []byte `json:"data"`
}

// maxHandoverFrames bounds the frames a decoded handover may carry (an
// owner's queue holds at most MaxQueueBytes; this bounds the count).
const maxHandoverFrames = 1 << 16

// MarshalJSON encodes h for the trip to the new node.
func (h *Handover) MarshalJSON() ([]byte, error) {
	w := handoverWire{Frames: make([]handoverFrame, len(h.Frames)), State: h.State}
	for i, f := range h.Frames {
		data := f.Data
		if f.Tail != nil || f.End != nil {
			data = append(append(append(make([]byte, 0, f.size()), f.Data...), f.Tail...), f.End...)
		}
		w.Frames[i] = handoverFrame{Binary: f.Binary, Data: data}
	}
	if w.State == nil {
		w.State = json.RawMessage("null")
	}
	return json.Marshal(w)
}

// DecodeHandover decodes what MarshalJSON encoded. It refuses more than
// maxHandoverFrames frames, more than maxBytes of frame data, text
// frames that are not packets, and a state that is not JSON.
func DecodeHandover(b []byte, maxBytes int) (*Handover, error) {
	var w handoverWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("engineio: handover: %w", err)
	}
	if len(w.Frames) > maxHandoverFrames {
		return nil, fmt.Errorf("engineio: handover: %d frames", len(w.Frames))
	}
	h := &Handover{Frames: make([]Frame, len(w.Frames))}
	total := 0
	for i, f := range w.Frames {
		total += len(f.Data)
		if total > maxBytes {
			return nil, fmt.Errorf("engineio: handover: frames over %d bytes", maxBytes)
		}
		if !f.Binary && len(f.Data) == 0 {
			return nil, errors.New("engineio: handover: empty text frame")
		}
		h.Frames[i] = Frame{Binary: f.Binary, Data: f.Data}
	}
	if len(w.State) > 0 && string(w.State) != "null" {
		h.State = w.State
	}
	return h, nil
}

// BeginHandover starts handing the session over to the node that received
// its websocket upgrade: as a probe answered here would, it answers the
// pending GET with a noop, so the client can pause polling once that node
// answers its probe. Unless Handover follows within UpgradeTimeout, the
// session goes on polling here. It fails with ErrHandoverRefused on a
// session that is not polling, is already being upgraded, or whose layer
// above does not move (no Handlers.OnHandover).
func (c *Conn) BeginHandover() error {
	if h := c.handlers.Load(); h == nil || h.OnHandover == nil {
		return ErrHandoverRefused
	}
	c.mu.Lock()
	if c.state != stateOpen || c.transport != kindPolling || c.upgrading || !c.srv.upgradesAllowed {
		c.mu.Unlock()
		return ErrHandoverRefused
	}
	c.upgrading, c.probed = true, true
	c.probeGen++
	var t *time.Timer
	t = time.AfterFunc(c.srv.cfg.UpgradeTimeout, func() {
		c.mu.Lock()
		if c.handover == t {
			c.handover = nil
			c.upgrading, c.probed = false, false
		}
		c.mu.Unlock()
	})
	c.handover = t
	c.mu.Unlock()
	signal(c.pollWake)
	return nil
}

// handoverPoll is how often Handover looks whether the client paused.
const handoverPoll = 5 * time.Millisecond

// Handover hands the session to the node that received its upgrade, after
// BeginHandover: once the client paused polling (no GET pending, no POST
// being read), the layer above stops the session (Handlers.OnHandover)
// and the session closes with ReasonHandover, without a word to the
// client. It returns the frames that were queued and not sent, and the
// layer above's state. It fails, leaving the session as it was, when ctx
// ends first, when the session is not being handed over, or when the
// layer above refuses.
func (c *Conn) Handover(ctx context.Context) (*Handover, error) {
	h := c.handlers.Load()
	if h == nil || h.OnHandover == nil {
		return nil, ErrHandoverRefused
	}
	// Without deliverMu: a POST being read needs it to hand its packets up.
	for {
		c.mu.Lock()
		if c.state != stateOpen || c.handover == nil {
			c.mu.Unlock()
			return nil, ErrHandoverRefused
		}
		if !c.pollActive && !c.postActive {
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(handoverPoll):
		}
	}
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	var frames []Frame
	stop := func() error {
		c.mu.Lock()
		if c.state != stateOpen || c.handover == nil || c.pollActive || c.postActive {
			c.mu.Unlock()
			return ErrHandoverRefused
		}
		c.handover.Stop()
		c.handover = nil
		frames = append([]Frame(nil), c.queue...)
		// Taking the queue and closing under one lock: a frame is either
		// in frames or refused to its sender.
		c.closeLocked(ReasonHandover, nil, modeAbort, nil, nil)
		return nil
	}
	state, err := h.OnHandover(ctx, stop)
	c.mu.Lock()
	stopped := c.state != stateOpen && c.reason == ReasonHandover
	c.mu.Unlock()
	if !stopped {
		if err == nil {
			err = ErrHandoverRefused // stop was not called
		}
		return nil, err
	}
	if err != nil {
		// The session is gone and its state with it: the client
		// reconnects and recovers.
		return nil, err
	}
	return &Handover{Frames: frames, State: state}, nil
}

// Adopted returns the layer above's state for a session that was handed
// over to this node (ServeHandover), nil for one that began here. Read it
// in Config.OnConnection.
func (c *Conn) Adopted() []byte { return c.adopted }

// HandoverSource reaches, for ServeHandover, the node that holds the
// session whose websocket upgrade arrived here.
type HandoverSource interface {
	// Begin calls the owner's BeginHandover. ErrHandoverUnsupported means
	// the owner does not hand sessions over.
	Begin(ctx context.Context) error
	// Take calls the owner's Handover.
	Take(ctx context.Context) (*Handover, error)
}

// ServeHandover serves the websocket upgrade of polling session sid, which
// another node holds, by taking the session over from it (the package
// comment of handover.go): the session goes on here, on the websocket,
// with the same sid. It reports false, having written nothing, when the
// owner does not hand sessions over (the caller may forward the upgrade
// to it instead). Every failure after the websocket was accepted closes
// it: the client reconnects.
func (s *Server) ServeHandover(w http.ResponseWriter, r *http.Request, sid string, src HandoverSource) bool {
	if !s.checkOrigin(w, r) {
		return true
	}
	q := r.URL.Query()
	switch {
	case !isWebSocketUpgrade(r) || q.Get("transport") != transportWebSocket || r.Method != http.MethodGet:
		writeError(w, CodeBadRequest)
		return true
	case !s.upgradesAllowed:
		writeError(w, CodeUnknownTransport)
		return true
	case q.Get("EIO") != "4":
		writeError(w, CodeUnsupportedProtocol)
		return true
	case s.isClosing():
		writeError(w, CodeShuttingDown)
		return true
	}
	if s.cfg.AllowRequest != nil {
		if err := s.cfg.AllowRequest(r); err != nil {
			var tm *TooManyRequestsError
			if errors.As(err, &tm) {
				writeError(w, CodeTooManyRequests)
			} else {
				writeError(w, CodeForbidden)
			}
			return true
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.UpgradeTimeout)
	defer cancel()
	if err := src.Begin(ctx); err != nil {
		if errors.Is(err, ErrHandoverUnsupported) {
			return false
		}
		s.log.Debug("engineio: handover not begun", "sid", sid, "err", err)
		if errors.Is(err, ErrHandoverRefused) {
			writeError(w, CodeBadRequest)
		} else {
			writeError(w, CodeUnknownSID)
		}
		return true
	}
	ws, nc, cork, err := s.accept(w, r)
	if err != nil {
		s.log.Debug("engineio: handover accept failed", "sid", sid, "err", err)
		return true
	}
	// The probe, bounded by the upgrade timeout like a local one.
	stop := context.AfterFunc(ctx, func() { _ = ws.CloseNow() })
	h, err := s.handoverProbe(ctx, ws, src)
	if !stop() || err != nil {
		s.log.Debug("engineio: handover failed", "sid", sid, "err", err)
		_ = ws.Close(websocket.StatusTryAgainLater, "")
		return true
	}
	c := &Conn{
		srv: s, created: time.Now(), id: sid, req: cloneRequest(r), transport: kindWebSocket,
		closing: make(chan struct{}), adopted: h.State,
	}
	c.ws, c.netConn, c.cork = ws, nc, cork
	if len(h.Frames) > 0 {
		c.queue = h.Frames
		for i := range h.Frames {
			c.queueBytes += h.Frames[i].size()
		}
	}
	if s.lookup(sid) != nil || !s.register(c) {
		_ = ws.Close(websocket.StatusGoingAway, "")
		return true
	}
	c.readers.Add(1)
	if s.cfg.OnOpen != nil {
		s.cfg.OnOpen(c)
	}
	s.cfg.OnConnection(c)
	c.start() // the kept frames, then whatever OnConnection queued
	go c.reader(ws, cork.park)
	return true
}

// handoverProbe answers the client's probe and takes the session once the
// client asked to upgrade.
func (s *Server) handoverProbe(ctx context.Context, ws *websocket.Conn, src HandoverSource) (*Handover, error) {
	typ, data, err := ws.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(data) != string(probePing) {
		return nil, fmt.Errorf("no probe: %v", err)
	}
	if err := ws.Write(ctx, websocket.MessageText, probePong); err != nil {
		return nil, err
	}
	typ, data, err = ws.Read(ctx)
	if err != nil || typ != websocket.MessageText || len(data) != 1 || data[0] != typeUpgrade {
		return nil, fmt.Errorf("no upgrade: %v", err)
	}
	return src.Take(ctx)
}
