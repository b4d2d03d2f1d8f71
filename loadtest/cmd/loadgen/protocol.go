package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// protocol is the wire protocol of the server a mode measures: what the
// idle, connect and fanout modes need to open, authenticate, hold and
// subscribe a connection and to publish. socketIO (Engine.IO v4 / Socket.IO
// v5 frames, Roomcast's contract) is the default; centrifugo speaks
// Centrifugo's JSON protocol and publishes through its HTTP API.
type protocol interface {
	// endpoint turns a base URL into the websocket URL to dial.
	endpoint(base string) (string, error)
	// token mints the JWT a connection of subject sub authenticates with.
	token(t tokens, sub string) (string, error)
	// open dials endpoint and authenticates with token; timeout bounds the
	// exchange after the dial. On error the connection is closed.
	open(ctx context.Context, d *dialer, endpoint, token string, timeout time.Duration) (*conn, error)
	// join subscribes c to a room (JSON-quoted) and waits for the answer.
	join(ctx context.Context, c *conn, quotedRoom []byte, timeout time.Duration) error
	// hold handles a message received on a held idle connection: it answers
	// heartbeats and reports whether the server ended the session.
	hold(c *conn, p []byte) (gone bool)
	// subscriberLoop is a fan-out subscriber's read loop (see fanout).
	subscriberLoop(f *fanout, s *subscriber)
	// newPublisher sets up fan-out publisher i: its connection, if any, its
	// send function and the goroutines (counted in f.readers) that take
	// its acknowledgements.
	newPublisher(ctx context.Context, f *fanout, i int) (*publisher, error)
}

// Protocol names, as the -protocol flag takes them.
const (
	protoSocketIO   = "socketio"
	protoCentrifugo = "centrifugo"
)

// protocolFor returns the protocol named by the -protocol flag.
func protocolFor(name string) (protocol, error) {
	switch name {
	case "", protoSocketIO:
		return socketIO{}, nil
	case protoCentrifugo:
		return centrifugo{}, nil
	}
	return nil, fmt.Errorf("%w: unknown protocol %q (want %s or %s)", errUsage, name, protoSocketIO, protoCentrifugo)
}

// socketIO is Roomcast's contract: Engine.IO v4 / Socket.IO v5 frames over
// a websocket, a JWT in the CONNECT auth payload, "join" and "publish"
// events answered with acks.
type socketIO struct{}

var _ protocol = socketIO{}

func (socketIO) endpoint(base string) (string, error) { return wsURL(base) }

func (socketIO) token(t tokens, sub string) (string, error) { return t.mint(sub) }

func (socketIO) open(ctx context.Context, d *dialer, endpoint, token string, timeout time.Duration) (*conn, error) {
	c, err := d.dial(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	if err := c.connect(ctx, token, timeout); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (socketIO) join(ctx context.Context, c *conn, quotedRoom []byte, timeout time.Duration) error {
	return c.join(ctx, quotedRoom, timeout)
}

func (socketIO) hold(c *conn, p []byte) bool {
	if len(p) == 1 && p[0] == eioPing {
		_ = c.send(context.Background(), pongFrame)
		return false
	}
	return isGone(p)
}

func (socketIO) subscriberLoop(f *fanout, s *subscriber) { f.subscriberLoop(s) }

// newPublisher opens a connection that does not join the room; publishes
// are "publish" events on it, acks arrive on its read loop.
func (socketIO) newPublisher(ctx context.Context, f *fanout, i int) (*publisher, error) {
	c, err := f.open(ctx, i, "pub-"+strconv.Itoa(i))
	if err != nil {
		return nil, err
	}
	p := &publisher{c: c, wake: make(chan struct{}, 1), errs: map[string]int64{}}
	buf := make([]byte, 0, 256) // owned by the write loop, the only caller of send
	p.send = func(id uint64, room int, t, seq int64) error {
		buf = appendPublish(buf[:0], id, f.quotedRooms[room], f.quotedEvent, t, seq)
		return c.send(context.Background(), buf)
	}
	if !f.conns.add(c) {
		return nil, errSetup
	}
	f.readers.Add(1)
	go f.publisherReadLoop(p)
	return p, nil
}
