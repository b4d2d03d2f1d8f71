package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/roomcast/roomcast/internal/auth"
)

// readLimit bounds one incoming message.
const readLimit = 1 << 20

// dialer opens websocket connections to Engine.IO servers, spreading them
// over source addresses so that tens of thousands of connections to one
// loopback port do not exhaust the ephemeral ports of one address pair.
type dialer struct {
	clients []*http.Client // one per source address (or one with none)
	next    atomic.Uint64
	timeout time.Duration // bounds dial + handshake + OPEN
}

// newDialer builds a dialer; sources may be empty (the kernel picks).
func newDialer(sources []net.IP, timeout time.Duration) *dialer {
	d := &dialer{timeout: timeout}
	mk := func(local net.Addr) *http.Client {
		nd := &net.Dialer{Timeout: timeout, LocalAddr: local, KeepAlive: -1}
		return &http.Client{Transport: &http.Transport{
			DialContext:         nd.DialContext,
			Proxy:               nil,
			DisableCompression:  true,
			TLSHandshakeTimeout: timeout,
		}}
	}
	if len(sources) == 0 {
		d.clients = []*http.Client{mk(nil)}
	}
	for _, ip := range sources {
		d.clients = append(d.clients, mk(&net.TCPAddr{IP: ip}))
	}
	return d
}

// close releases idle transport resources.
func (d *dialer) close() {
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
}

// sourceRange returns n loopback source addresses 127.0.0.2 ... 127.0.0.(n+1)
// when target is a loopback address, none otherwise (or when n is 0).
func sourceRange(target string, n int) ([]net.IP, error) {
	if n <= 0 {
		return nil, nil
	}
	if n > 250 {
		return nil, fmt.Errorf("%w: at most 250 source addresses", errUsage)
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("%w: target %q: %v", errUsage, target, err)
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil, nil
	}
	ips := make([]net.IP, n)
	for i := range ips {
		ips[i] = net.IPv4(127, 0, 0, byte(2+i))
	}
	return ips, nil
}

// parseTarget parses a base URL (http://host:port, ws://host:port,
// optionally with a path prefix) and sets its scheme to the websocket
// (ws, wss) or HTTP (http, https) one.
func parseTarget(base string, ws bool) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("%w: target %q: %v", errUsage, base, err)
	}
	secure := false
	switch u.Scheme {
	case "http", "ws":
	case "https", "wss":
		secure = true
	default:
		return nil, fmt.Errorf("%w: target %q: scheme must be http(s) or ws(s)", errUsage, base)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: target %q has no host", errUsage, base)
	}
	u.Scheme = "http"
	if ws {
		u.Scheme = "ws"
	}
	if secure {
		u.Scheme += "s"
	}
	u.RawQuery = ""
	return u, nil
}

// wsURL turns a base URL into the Engine.IO websocket endpoint.
func wsURL(base string) (string, error) {
	u, err := parseTarget(base, true)
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(u.Path, "/socket.io/") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/socket.io/"
	}
	u.RawQuery = "EIO=4&transport=websocket"
	return u.String(), nil
}

// apiURL turns a base URL into its /api/v1/emit endpoint.
func apiURL(base string) (string, error) {
	u, err := parseTarget(base, false)
	if err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/socket.io") + "/api/v1/emit"
	return u.String(), nil
}

// conn is one Engine.IO websocket session. Its read side (read, and the
// buffer it returns) belongs to one goroutine at a time.
type conn struct {
	ws   *websocket.Conn
	open openPacket
	buf  []byte
}

// dial opens a websocket to endpoint (from wsURL) and reads the OPEN packet.
func (d *dialer) dial(ctx context.Context, endpoint string) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, err := d.dialWS(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	p, err := c.read(ctx)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("read OPEN: %w", err)
	}
	if c.open, err = parseOpen(p); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// dialWS opens a websocket to endpoint, bounded by ctx; nothing is read.
func (d *dialer) dialWS(ctx context.Context, endpoint string) (*conn, error) {
	client := d.clients[d.next.Add(1)%uint64(len(d.clients))]
	ws, _, err := websocket.Dial(ctx, endpoint, &websocket.DialOptions{
		HTTPClient:      client,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(readLimit)
	return &conn{ws: ws, buf: make([]byte, 0, 512)}, nil
}

// read returns the next text or binary message; the slice is valid until
// the next call. ctx should be context.Background() in steady-state loops
// (a cancellable context costs an AfterFunc per message); close the
// connection to stop such a loop.
func (c *conn) read(ctx context.Context) ([]byte, error) {
	_, r, err := c.ws.Reader(ctx)
	if err != nil {
		return nil, err
	}
	c.buf, err = readMessage(r, c.buf, readLimit)
	return c.buf, err
}

// send writes one text message.
func (c *conn) send(ctx context.Context, p []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, p)
}

// close drops the connection without a close handshake.
func (c *conn) close() { _ = c.ws.CloseNow() }

// connect sends CONNECT with the token and waits for the reply, answering
// pings meanwhile. It is bounded by timeout.
func (c *conn) connect(ctx context.Context, token string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.send(ctx, appendConnect(make([]byte, 0, 64+len(token)), token)); err != nil {
		return fmt.Errorf("send CONNECT: %w", err)
	}
	for range 64 { // a few pings or noops may come first; never loop forever
		p, err := c.read(ctx)
		if err != nil {
			return fmt.Errorf("wait CONNECT reply: %w", err)
		}
		if len(p) == 1 && p[0] == eioPing {
			if err := c.send(ctx, pongFrame); err != nil {
				return err
			}
			continue
		}
		switch kind, msg := parseConnectReply(p); kind {
		case replyOK:
			return nil
		case replyRefused:
			return fmt.Errorf("%w: %s", errConnectRefused, msg)
		}
		if len(p) > 0 && p[0] == eioClose {
			return errClosed
		}
	}
	return fmt.Errorf("%w: no CONNECT reply among the first 64 frames", errFrame)
}

// join sends `join` for a room and waits for its ack, answering pings.
func (c *conn) join(ctx context.Context, quotedRoom []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	const id = 1
	if err := c.send(ctx, appendJoin(nil, id, quotedRoom)); err != nil {
		return fmt.Errorf("send join: %w", err)
	}
	for range 64 {
		p, err := c.read(ctx)
		if err != nil {
			return fmt.Errorf("wait join ack: %w", err)
		}
		if len(p) == 1 && p[0] == eioPing {
			if err := c.send(ctx, pongFrame); err != nil {
				return err
			}
			continue
		}
		if a, ok := parseAck(p); ok && a.ID == id {
			if !a.OK {
				return fmt.Errorf("%w: join refused: %s", errConnectRefused, a.Code)
			}
			return nil
		}
		if isGone(p) {
			return errClosed
		}
	}
	return fmt.Errorf("%w: no join ack among the first 64 frames", errFrame)
}

// isGone reports an Engine.IO close or a Socket.IO DISCONNECT of "/".
func isGone(p []byte) bool {
	if len(p) == 1 && p[0] == eioClose {
		return true
	}
	return len(p) == 2 && p[0] == eioMessage && p[1] == sioDisconnect
}

// tokens mints HS256 tokens that allow joining and publishing anywhere.
type tokens struct {
	secret []byte
	ttl    time.Duration
}

func (t tokens) mint(sub string) (string, error) {
	if len(t.secret) == 0 {
		return "", nil
	}
	return auth.Sign("HS256", t.secret, map[string]any{
		"sub":     sub,
		"join":    []string{"*"},
		"publish": []string{"*"},
		"exp":     time.Now().Add(t.ttl).Unix(),
	})
}
