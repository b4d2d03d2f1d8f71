package engineio

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// probePing and probePong are the upgrade probe's packets.
var (
	probePing = []byte("2probe")
	probePong = []byte("3probe")
)

// hijackRecorder keeps the net.Conn that websocket.Accept hijacks, so the
// engine can cut a connection whose close handshake or write is stuck.
type hijackRecorder struct {
	http.ResponseWriter
	poll *readPoller // parks the websocket's reads; nil: they wait on goroutines
	conn net.Conn
	cork *corkConn
}

// wsReadBufio and wsWriteBufio size the bufio reader and writer the
// websocket library gets. The reader is the smallest bufio allows: a
// message costs a read for its header and one for its payload, and
// clients send little. The writer takes a small message whole (one write
// into corkConn, whose pooled chunk is the real write buffer, held only
// while a flush runs).
const (
	wsReadBufio  = 16
	wsWriteBufio = 128
)

// Hijack hands the websocket library a corkable view of the connection
// with tiny buffers of its own. net/http's 4 KiB reader and writer are
// dropped: its reader keeps the whole net/http connection (writer,
// response) alive, which an idle websocket should not pin. (A client that
// sent bytes after its handshake before the reply keeps net/http's
// reader, which holds them.)
func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nc, brw, err
	}
	if err := brw.Writer.Flush(); err != nil {
		return nc, brw, err
	}
	h.conn = nc
	h.cork = &corkConn{Conn: nc}
	br := brw.Reader
	if br.Buffered() == 0 {
		br = bufio.NewReaderSize(h.cork, wsReadBufio)
		h.cork.park = newReadPark(h.poll, nc, br)
	}
	return h.cork, bufio.NewReadWriter(br, bufio.NewWriterSize(h.cork, wsWriteBufio)), nil
}

// accept completes the websocket handshake of r.
func (s *Server) accept(w http.ResponseWriter, r *http.Request) (*websocket.Conn, net.Conn, *corkConn, error) {
	rec := &hijackRecorder{ResponseWriter: w, poll: s.readPoller()}
	ws, err := websocket.Accept(rec, r, s.acceptOpts)
	if err != nil {
		return nil, nil, nil, err
	}
	ws.SetReadLimit(s.cfg.MaxPayload)
	return ws, rec.conn, rec.cork, nil
}

// handshakeWebSocket opens a websocket-only session. The session's read
// loop runs on a goroutine of its own and the handler returns, so that
// net/http forgets the hijacked connection (and the handler's stack).
func (s *Server) handshakeWebSocket(w http.ResponseWriter, r *http.Request) {
	ws, nc, cork, err := s.accept(w, r)
	if err != nil {
		s.log.Debug("engineio: websocket accept failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := newConn(s, r, kindWebSocket)
	c.ws, c.netConn, c.cork = ws, nc, cork
	if !s.register(c) {
		_ = ws.Close(websocket.StatusGoingAway, "")
		return
	}
	c.readers.Add(1)
	if s.cfg.OnOpen != nil {
		s.cfg.OnOpen(c)
	}
	s.cfg.OnConnection(c)
	c.start() // writes OPEN and whatever OnConnection queued
	go c.reader(ws, cork.park)
}

// serveProbe runs a polling session's upgrade: "2probe" -> "3probe", the
// pending GET gets a noop, "5" switches the transport. The session's read
// loop then runs on a goroutine of its own and the handler returns.
func (c *Conn) serveProbe(w http.ResponseWriter, r *http.Request) {
	s := c.srv
	c.mu.Lock()
	if c.state != stateOpen || c.transport != kindPolling || c.upgrading || !s.upgradesAllowed {
		c.mu.Unlock()
		// Like engine.io: the redundant websocket is accepted, then closed,
		// so a client sees a close rather than a failed handshake.
		if ws, _, _, err := s.accept(w, r); err == nil {
			_ = ws.Close(websocket.StatusPolicyViolation, "")
		}
		return
	}
	c.upgrading = true
	c.readers.Add(1)
	c.mu.Unlock()
	reading := false // the read loop's goroutine owns the readers count
	defer func() {
		if !reading {
			c.readers.Done()
		}
	}()

	ws, nc, cork, err := s.accept(w, r)
	if err != nil {
		s.log.Debug("engineio: probe accept failed", "sid", c.id, "err", err)
		c.abandonProbe(nil)
		return
	}
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		_ = ws.CloseNow()
		return
	}
	c.probeWS, c.probeNet, c.probeCork = ws, nc, cork
	c.mu.Unlock()

	// On timeout the session forgets the probe before its websocket is
	// closed, so a client that sees the close can probe again at once.
	timeout := time.AfterFunc(s.cfg.UpgradeTimeout, func() { c.abandonProbe(ws) })
	ok := c.probe(ws, nc)
	timeout.Stop()
	if !ok {
		c.abandonProbe(ws)
		return
	}
	c.deliverMu.Lock()
	if h := c.handlers.Load(); h != nil && h.OnUpgrade != nil && c.isOpen() {
		h.OnUpgrade(transportWebSocket)
	}
	c.deliverMu.Unlock()
	reading = true
	go c.reader(ws, cork.park)
}

// probe runs the upgrade exchange on ws and switches the session to it. It
// fails when ws is closed: by the upgrade timeout, by the session's close.
func (c *Conn) probe(ws *websocket.Conn, nc net.Conn) bool {
	ctx := context.Background()
	typ, data, err := ws.Read(ctx)
	if err != nil || typ != websocket.MessageText || !bytes.Equal(data, probePing) {
		return false
	}
	if err := ws.Write(ctx, websocket.MessageText, probePong); err != nil {
		return false
	}
	c.mu.Lock()
	if c.probeWS != ws { // timed out meanwhile
		c.mu.Unlock()
		return false
	}
	c.probed = true
	c.probeGen++
	c.mu.Unlock()
	signal(c.pollWake) // the pending GET answers with a noop

	typ, data, err = ws.Read(ctx)
	if err != nil || typ != websocket.MessageText || len(data) != 1 || data[0] != typeUpgrade {
		return false
	}
	c.mu.Lock()
	if c.state != stateOpen || c.probeWS != ws {
		c.mu.Unlock()
		return false
	}
	c.transport = kindWebSocket
	c.ws, c.netConn, c.cork = ws, nc, c.probeCork
	c.probeWS, c.probeNet, c.probeCork = nil, nil, nil
	c.upgrading, c.probed = false, false
	c.mu.Unlock()
	signal(c.pollWake) // a GET still pending is refused
	c.mu.Lock()
	c.notifyLocked() // flush what queued up during the upgrade
	return true
}

// abandonProbe forgets a failed probe and closes its websocket; the
// session goes on polling. ws nil means the probe was never accepted. It
// does nothing for a websocket that is no longer the session's probe (it
// completed the upgrade, or was abandoned already).
func (c *Conn) abandonProbe(ws *websocket.Conn) {
	c.mu.Lock()
	mine := ws == nil || c.probeWS == ws
	if mine {
		c.probeWS, c.probeNet, c.probeCork = nil, nil, nil
		c.upgrading, c.probed = false, false
	}
	c.mu.Unlock()
	if mine && ws != nil {
		_ = ws.CloseNow()
	}
}

// reader is the read loop's goroutine; it holds one count of c.readers.
// After a message was handed to OnMessage, the read is parked in the read
// poller (readpark.go) when nothing more is buffered: the connection then
// has no goroutine until bytes arrive, and the poller starts a fresh one.
// Where it cannot park, the loop goes on in a fresh goroutine: the layers
// above run deep call chains on it (a connect with its token check, a
// broadcast), and Go does not give a grown stack back while the goroutine
// waits in a read (it shrinks stacks at a garbage collection, only when a
// quarter is in use, and an idle server collects rarely). Heartbeat
// pongs, the common idle packet, neither park nor switch.
func (c *Conn) reader(ws *websocket.Conn, park *readPark) {
	if c.readLoop(ws, park != nil) {
		if !park.park(c, ws) {
			go c.reader(ws, park)
		}
		return
	}
	park.end()
	c.readers.Done()
}

// readLoop reads the session's websocket, acting on every packet in
// order. It returns true after it handed a message to OnMessage, or after
// any packet when the read parks between packets (the caller goes on
// reading), false when the session's reading is over.
func (c *Conn) readLoop(ws *websocket.Conn, parks bool) bool {
	for {
		typ, rd, err := ws.Reader(context.Background())
		if err != nil {
			c.readFailed(err)
			return false
		}
		data, err := readMessage(rd)
		if err != nil {
			c.readFailed(err)
			return false
		}
		if typ == websocket.MessageBinary {
			c.deliver(data, true)
			return true
		}
		p, err := decodePacket(data)
		if err != nil {
			c.closeWith(ReasonParseError, err, modeClose, nil)
			return false
		}
		if !c.handlePacket(p) {
			return false
		}
		if p.typ == typeMessage || parks {
			return true
		}
	}
}

// readFailed closes the session after its websocket read failed.
func (c *Conn) readFailed(err error) {
	if errors.Is(err, websocket.ErrMessageTooBig) {
		c.closeWith(ReasonTransportError, fmt.Errorf("%w: %w", ErrPayloadTooLarge, err), modeAbort, nil)
		return
	}
	if websocket.CloseStatus(err) != -1 || errors.Is(err, io.EOF) {
		err = nil // the peer closed
	}
	c.closeWith(ReasonTransportClose, err, modeAbort, nil)
}

// readBufPool holds the buffers websocket messages are read into before
// being copied out at their exact size.
var readBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readMessage reads one websocket message into a slice the caller owns.
func readMessage(r io.Reader) ([]byte, error) {
	buf := readBufPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(r)
	var out []byte
	if err == nil {
		out = make([]byte, buf.Len())
		copy(out, buf.Bytes())
	}
	if buf.Cap() <= 64<<10 {
		readBufPool.Put(buf)
	}
	return out, err
}
