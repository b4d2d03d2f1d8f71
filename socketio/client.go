package socketio

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/parser"
)

// client is one Engine.IO connection and the sockets (one per namespace)
// multiplexed over it. Its packets are handled one at a time, in order, by
// the connection's read loop.
type client struct {
	srv  *Server
	conn *engineio.Conn
	dec  parser.Decoder

	mu      sync.Mutex
	sockets map[string]*Socket // namespace -> socket
	closed  bool
	timer   *time.Timer

	transport atomic.Pointer[string]
	sent      atomic.Pointer[prometheus.Counter]
	received  atomic.Pointer[prometheus.Counter]
}

func newClient(s *Server, conn *engineio.Conn) {
	c := &client{srv: s, conn: conn, sockets: make(map[string]*Socket)}
	c.setTransport(conn.Transport())
	c.timer = time.AfterFunc(s.cfg.ConnectTimeout, c.onConnectTimeout)
	conn.SetHandlers(engineio.Handlers{
		OnMessage: c.onMessage,
		OnUpgrade: c.onUpgrade,
		OnClose:   c.onClose,
	})
}

func (c *client) setTransport(t string) {
	c.transport.Store(&t)
	if m := c.srv.cfg.Metrics; m != nil {
		sent := m.PacketsSent.WithLabelValues(t)
		recv := m.PacketsReceived.WithLabelValues(t)
		c.sent.Store(&sent)
		c.received.Store(&recv)
	}
}

func (c *client) transportName() string { return *c.transport.Load() }

func (c *client) onConnectTimeout() {
	c.mu.Lock()
	idle := len(c.sockets) == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.countConnectError("timeout")
		c.closeWith("forced close")
	}
}

func (c *client) countConnectError(reason string) {
	if m := c.srv.cfg.Metrics; m != nil {
		m.ConnectErrors.WithLabelValues(reason).Inc()
	}
}

func (c *client) onUpgrade(transport string) {
	old := c.transportName()
	c.setTransport(transport)
	if m := c.srv.cfg.Metrics; m != nil {
		c.mu.Lock()
		for name := range c.sockets {
			m.Connections.WithLabelValues(old, name).Dec()
			m.Connections.WithLabelValues(transport, name).Inc()
		}
		c.mu.Unlock()
	}
}

// send writes frames to the connection; a failure closes it (the engine
// reports why through OnClose).
func (c *client) send(frames []engineio.Frame) bool {
	if err := c.conn.Send(frames...); err != nil {
		return false
	}
	if p := c.sent.Load(); p != nil {
		(*p).Inc()
	}
	return true
}

func (c *client) sendPacket(p *parser.Packet) bool {
	text := parser.AppendText([]byte{'4'}, p)
	if len(p.Attachments) == 0 {
		return c.send([]engineio.Frame{{Data: text}})
	}
	frames := make([]engineio.Frame, 0, 1+len(p.Attachments))
	frames = append(frames, engineio.Frame{Data: text})
	for _, a := range p.Attachments {
		frames = append(frames, engineio.Frame{Binary: true, Data: a})
	}
	return c.send(frames)
}

func (c *client) onMessage(data []byte, binary bool) {
	p, err := c.dec.Decode(data, binary)
	if err != nil {
		c.srv.log.Debug("socketio: closing client on bad packet", "sid", c.conn.ID(), "err", err)
		c.closeWith("parse error")
		return
	}
	if p == nil {
		return // waiting for attachments
	}
	if r := c.received.Load(); r != nil {
		(*r).Inc()
	}
	if p.Type == parser.Connect {
		c.connect(p)
		return
	}
	c.mu.Lock()
	s := c.sockets[p.Namespace]
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
		c.countConnectError("invalid namespace")
		c.sendPacket(&parser.Packet{
			Type: parser.ConnectError, Namespace: p.Namespace, ID: parser.NoID,
			Data: json.RawMessage(`{"message":"Invalid namespace"}`),
		})
		return
	}
	c.mu.Lock()
	_, dup := c.sockets[p.Namespace]
	c.mu.Unlock()
	if dup {
		// A second CONNECT for the same namespace is a protocol violation.
		c.closeWith("parse error")
		return
	}
	var auth map[string]any
	if len(p.Data) > 0 {
		if err := json.Unmarshal(p.Data, &auth); err != nil {
			c.closeWith("parse error")
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
	c.sockets[s.nsp.name] = s
	c.timer.Stop()
	return true
}

func (c *client) detach(s *Socket) (last bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sockets[s.nsp.name] == s {
		delete(c.sockets, s.nsp.name)
	}
	return len(c.sockets) == 0
}

// closeWith closes the connection; the engine reports reason to onClose,
// which disconnects every socket on it with that reason.
func (c *client) closeWith(reason string) { c.conn.CloseReason(reason) }

// onClose runs when the Engine.IO connection ended. It may be called from
// inside a Send (a slow consumer), that is under a room lock: the cleanup,
// which leaves rooms, runs on its own goroutine.
func (c *client) onClose(reason string, _ error) {
	c.mu.Lock()
	c.closed = true
	c.timer.Stop()
	socks := make([]*Socket, 0, len(c.sockets))
	for _, s := range c.sockets {
		socks = append(socks, s)
	}
	c.sockets = map[string]*Socket{}
	c.mu.Unlock()
	if m := c.srv.cfg.Metrics; m != nil && reason == "slow consumer" {
		m.SlowConsumerDisconnect.Inc()
	}
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
