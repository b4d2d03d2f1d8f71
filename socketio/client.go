package socketio

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/parser"
	"github.com/roomcast/roomcast/metrics"
)

// client is one Engine.IO connection and the sockets (one per namespace)
// multiplexed over it. Its packets are handled one at a time, in order, by
// the connection's read loop.
type client struct {
	srv  *Server
	conn *engineio.Conn
	dec  parser.Decoder

	mu      sync.Mutex
	sockets []*Socket // one per namespace connected (a client has few)
	closed  bool
	timer   *time.Timer // the connect timeout; nil once a namespace connected

	transport atomic.Pointer[string]
	packets   atomic.Pointer[metrics.Transport] // the transport's counters; nil without metrics
}

func newClient(s *Server, conn *engineio.Conn) {
	c := &client{srv: s, conn: conn}
	c.setTransport(conn.Transport())
	c.timer = time.AfterFunc(s.cfg.ConnectTimeout, c.onConnectTimeout)
	h := engineio.Handlers{
		OnMessage: c.onMessage,
		OnUpgrade: c.onUpgrade,
		OnClose:   c.onClose,
	}
	if _, ok := s.ext.(*recovery); ok {
		h.OnHandover = c.onHandover // the sockets' sessions make it possible
	}
	conn.SetHandlers(h)
	if state := conn.Adopted(); state != nil {
		c.adopt(state)
	}
}

func (c *client) setTransport(t string) {
	c.transport.Store(&t)
	c.packets.Store(c.srv.cfg.Metrics.Transport(t))
}

func (c *client) transportName() string { return *c.transport.Load() }

func (c *client) onConnectTimeout() {
	c.mu.Lock()
	idle := len(c.sockets) == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.srv.cfg.Metrics.ConnectRefused("timeout")
		c.closeWith(engineio.ReasonForcedClose)
	}
}

func (c *client) onUpgrade(transport string) {
	old := c.transportName()
	c.setTransport(transport)
	c.mu.Lock()
	for _, s := range c.sockets {
		c.srv.cfg.Metrics.Upgraded(old, transport, s.nsp.name)
	}
	c.mu.Unlock()
}

// send writes frames to the connection; a failure closes it (the engine
// reports why through OnClose).
func (c *client) send(frames []engineio.Frame) bool {
	if err := c.conn.Send(frames...); err != nil {
		return false
	}
	c.packets.Load().Sent()
	return true
}

func (c *client) sendPacket(p *parser.Packet) bool {
	return c.send(parser.AppendFrames(nil, p))
}

func (c *client) onMessage(data []byte, binary bool) {
	p, err := c.dec.Decode(data, binary)
	if err != nil {
		c.srv.log.Debug("socketio: closing client on bad packet", "sid", c.conn.ID(), "err", err)
		c.closeWith(engineio.ReasonParseError)
		return
	}
	if p == nil {
		return // waiting for attachments
	}
	c.packets.Load().Received()
	if p.Type == parser.Connect {
		c.connect(p)
		return
	}
	c.mu.Lock()
	s := c.socketLocked(p.Namespace)
	c.mu.Unlock()
	if s == nil {
		// As the reference server does: a packet for a namespace the client
		// has not joined is ignored.
		return
	}
	s.onPacket(p)
}

func (c *client) connect(p *parser.Packet) {
	n, ok := c.srv.lookup(p.Namespace)
	if !ok {
		c.srv.cfg.Metrics.ConnectRefused("invalid namespace")
		c.sendPacket(&parser.Packet{
			Type: parser.ConnectError, Namespace: p.Namespace, ID: parser.NoID,
			Data: json.RawMessage(`{"message":"Invalid namespace"}`),
		})
		return
	}
	c.mu.Lock()
	dup := c.socketLocked(p.Namespace) != nil
	c.mu.Unlock()
	if dup {
		// A second CONNECT for the same namespace is a protocol violation.
		c.closeWith(engineio.ReasonParseError)
		return
	}
	var auth map[string]any
	if len(p.Data) > 0 {
		if err := json.Unmarshal(p.Data, &auth); err != nil {
			c.closeWith(engineio.ReasonParseError)
			return
		}
	}
	if auth == nil {
		auth = map[string]any{}
	}
	n.connect(c, auth)
}

// attach registers a connected socket; it reports false when the client has
// closed meanwhile.
func (c *client) attach(s *Socket) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.sockets = append(c.sockets, s)
	c.stopTimerLocked()
	return true
}

// socketLocked returns the client's socket in namespace nsp, or nil.
func (c *client) socketLocked(nsp string) *Socket {
	for _, s := range c.sockets {
		if s.nsp.name == nsp {
			return s
		}
	}
	return nil
}

func (c *client) stopTimerLocked() {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil // a connected client keeps no timer
	}
}

func (c *client) detach(s *Socket) (last bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.sockets, s); i >= 0 {
		c.sockets = slices.Delete(c.sockets, i, i+1)
	}
	return len(c.sockets) == 0
}

// closeWith closes the connection; the engine reports reason to onClose,
// which disconnects every socket on it with that reason.
func (c *client) closeWith(reason engineio.Reason) { c.conn.CloseReason(reason) }

// onClose runs when the Engine.IO connection ended, on the engine's session
// goroutine (Conn.run) after the transport closed. The sockets' cleanups,
// which leave rooms and run the OnDisconnect handlers, go to a goroutine of
// their own, owned by the Server (awaited in Shutdown), so that no handler
// holds up the engine's close sequence.
func (c *client) onClose(reason engineio.Reason, _ error) {
	c.mu.Lock()
	c.closed = true
	c.stopTimerLocked()
	socks := c.sockets
	c.sockets = nil
	c.mu.Unlock()
	c.srv.cfg.Metrics.ConnectionClosed(reason)
	if len(socks) == 0 {
		return
	}
	c.srv.wg.Add(1)
	go func() {
		defer c.srv.wg.Done()
		for _, s := range socks {
			s.cleanup(reason)
		}
	}()
}
