// Package sitest is a raw Socket.IO test client: it speaks Engine.IO and
// Socket.IO frames over a websocket so tests can check the exact bytes on
// the wire.
package sitest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Client speaks Engine.IO/Socket.IO frames over a websocket, so tests can
// check the exact bytes on the wire.
type Client struct {
	T    testing.TB
	Conn *websocket.Conn
}

func Dial(t testing.TB, url string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(10 << 20)
	rc := &Client{T: t, Conn: c}
	t.Cleanup(func() { c.CloseNow() })
	open := rc.Read()
	if !strings.HasPrefix(open, "0{") {
		t.Fatalf("first frame %q, want OPEN", open)
	}
	return rc
}

func (c *Client) Send(s string) {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Conn.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.T.Fatalf("write %q: %v", s, err)
	}
}

func (c *Client) SendBinary(b []byte) {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Conn.Write(ctx, websocket.MessageBinary, b); err != nil {
		c.T.Fatalf("write binary: %v", err)
	}
}

// readFrame returns the next frame that is not a ping (pings are answered).
func (c *Client) ReadFrame() (websocket.MessageType, []byte) {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		typ, b, err := c.Conn.Read(ctx)
		if err != nil {
			c.T.Fatalf("read: %v", err)
		}
		if typ == websocket.MessageText && string(b) == "2" {
			c.Send("3")
			continue
		}
		return typ, b
	}
}

func (c *Client) Read() string {
	c.T.Helper()
	typ, b := c.ReadFrame()
	if typ != websocket.MessageText {
		c.T.Fatalf("got a binary frame, want text")
	}
	return string(b)
}

// connect joins namespace nsp ("/" or "/x") and returns the socket id.
func (c *Client) Connect(nsp, auth string) string {
	c.T.Helper()
	prefix := "40"
	if nsp != "/" {
		prefix += nsp + ","
	}
	c.Send(prefix + auth)
	reply := c.Read()
	if !strings.HasPrefix(reply, prefix+"{") {
		c.T.Fatalf("CONNECT reply %q", reply)
	}
	var v struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(reply[len(prefix):]), &v); err != nil || v.SID == "" {
		c.T.Fatalf("CONNECT reply %q: %v", reply, err)
	}
	return v.SID
}

// expectClosed waits for the server to close the connection.
func (c *Client) ExpectClosed() {
	c.T.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		typ, b, err := c.Conn.Read(ctx)
		cancel()
		if err != nil {
			return
		}
		if typ == websocket.MessageText && (string(b) == "2" || string(b) == "1") {
			continue
		}
		c.T.Fatalf("expected close, got %q", b)
	}
}
