package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/roomcast/roomcast/internal/auth"
)

// centrifugo speaks Centrifugo's client protocol (v2, JSON) over its
// websocket endpoint, /connection/websocket: a connect command carrying a
// JWT (claims sub and exp), a subscribe command for the room's channel, and
// publications that arrive as push messages. Publishes go through its HTTP
// API (POST /api/publish with X-API-Key), each with the same data as a
// socket.io publish, {"t": publish time, "seq": n}.
//
// Centrifugo may put several replies and pushes in one websocket message,
// one JSON object a line; every reader here splits messages into lines.
// The server pings with an empty object, {}, and the client answers {}.
type centrifugo struct{}

var _ protocol = centrifugo{}

// Command ids of the two requests a connection sends.
const (
	cfConnectID   = 1
	cfSubscribeID = 2
)

// cfPing is both the server's ping and the client's pong.
var cfPing = []byte("{}")

func (centrifugo) endpoint(base string) (string, error) { return cfWSURL(base) }

// token mints a connection token with only the claims Centrifugo reads: sub
// and exp (Roomcast's join and publish grants mean nothing to it).
func (centrifugo) token(t tokens, sub string) (string, error) {
	if len(t.secret) == 0 {
		return "", nil
	}
	return auth.Sign("HS256", t.secret, map[string]any{"sub": sub, "exp": time.Now().Add(t.ttl).Unix()})
}

func (centrifugo) open(ctx context.Context, d *dialer, endpoint, token string, timeout time.Duration) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := d.dialWS(ctx, endpoint)
	if err != nil {
		return nil, err
	}
	if _, err := cfRequest(ctx, c, cfConnectID, appendCFConnect(nil, cfConnectID, token)); err != nil {
		c.close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

func (centrifugo) join(ctx context.Context, c *conn, quotedRoom []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cfRequest(ctx, c, cfSubscribeID, appendCFSubscribe(nil, cfSubscribeID, quotedRoom)); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}

func (centrifugo) hold(c *conn, p []byte) bool {
	for len(p) > 0 {
		var line []byte
		line, p = cutLine(p)
		if bytes.Equal(line, cfPing) {
			_ = c.send(context.Background(), cfPing)
		}
	}
	return false // Centrifugo ends a websocket session with a close frame: the read fails
}

// subscriberLoop reads publications of the subscriber's room; they carry
// no event name, so every publication of the room's channel counts.
func (centrifugo) subscriberLoop(f *fanout, s *subscriber) {
	defer f.readers.Done()
	bg := context.Background()
	room := f.quotedRooms[s.room]
	for {
		p, err := s.c.read(bg)
		if err != nil {
			f.lost(s, err)
			return
		}
		now := time.Now().UnixNano()
		for len(p) > 0 {
			var line []byte
			line, p = cutLine(p)
			if d, ok := parseCFPublication(line, room); ok {
				f.received(s, now, d)
			} else if bytes.Equal(line, cfPing) {
				if err := s.c.send(bg, cfPing); err != nil {
					f.lost(s, err)
					return
				}
			}
		}
	}
}

// newPublisher sets up an HTTP API publisher: no websocket (so it is in no
// channel, as a socket.io publisher is in no room), and workers with one
// request in flight each, taking publishes from the write loop. A publish
// that finds no idle worker starts one, so the hand-over never waits and
// the publish's time is taken just before its request, as it is before a
// socket.io write; the write loop's bound on publishes waiting for their
// ack (MaxUnacked) bounds the workers. At saturation the closed loop keeps
// them near Inflight in all; at a fixed rate a slow answer does not lower
// the rate offered, as with socket.io, whose publishes are not waited for.
func (centrifugo) newPublisher(_ context.Context, f *fanout, i int) (*publisher, error) {
	api, err := cfAPIURL(f.cfg.Targets[i%len(f.cfg.Targets)])
	if err != nil {
		return nil, err
	}
	cp := &cfPublisher{
		api: api,
		key: f.cfg.APIKey,
		client: &http.Client{
			Timeout: f.cfg.HandshakeTimeout,
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: f.cfg.HandshakeTimeout}).DialContext,
				DisableCompression:  true,
				MaxIdleConnsPerHost: f.cfg.MaxUnacked, // one a worker
			},
		},
		jobs:        make(chan cfJob),
		quotedRooms: f.quotedRooms,
	}
	p := &publisher{wake: make(chan struct{}, 1), errs: map[string]int64{}}
	cp.p = p
	p.send = func(id uint64, room int, t, seq int64) error {
		j := cfJob{id: id, room: room, t: t, seq: seq}
		select {
		case cp.jobs <- j: // an idle worker takes it
			return nil
		default:
		}
		// Only the write loop sends and starts workers, and jobs is
		// closed after it returns: the new worker finds it open.
		cp.running.Add(1)
		f.readers.Add(1)
		go cp.work(f)
		cp.jobs <- j
		return nil
	}
	p.done = sync.OnceFunc(func() { close(cp.jobs) })
	return p, nil
}

// cfPublisher is one HTTP API publisher's shared state.
type cfPublisher struct {
	p           *publisher
	api, key    string
	client      *http.Client
	jobs        chan cfJob   // closed by p.done
	quotedRooms [][]byte     // the channels, by room
	running     atomic.Int64 // workers not yet returned; the last closes the client's connections
	mu          sync.Mutex   // guards p.errs and p.errIDs, which every worker updates
}

// cfJob is one publish for a worker.
type cfJob struct {
	id     uint64
	room   int
	t, seq int64
}

// work posts publishes until jobs is closed; each answer counts as the
// publish's ack.
func (cp *cfPublisher) work(f *fanout) {
	defer f.readers.Done()
	defer func() {
		if cp.running.Add(-1) == 0 {
			cp.client.CloseIdleConnections()
		}
	}()
	buf := make([]byte, 0, 128)
	p := cp.p
	for j := range cp.jobs {
		buf = appendCFPublish(buf[:0], cp.quotedRooms[j.room], j.t, j.seq)
		if code := cp.post(buf); code != "" {
			cp.mu.Lock()
			p.errs[code]++
			if len(p.errIDs) < 1<<20 {
				p.errIDs = append(p.errIDs, j.id)
			}
			cp.mu.Unlock()
		}
		p.acks.Add(1)
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// post sends one publish and returns "" when Centrifugo accepted it, or
// the class of its failure.
func (cp *cfPublisher) post(body []byte) string {
	req, err := http.NewRequest(http.MethodPost, cp.api, bytes.NewReader(body))
	if err != nil {
		return "request: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", cp.key)
	resp, err := cp.client.Do(req)
	if err != nil {
		return httpErrorClass(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return httpErrorClass(err)
	}
	return cfPublishOutcome(resp.StatusCode, b)
}

// cfPublishOutcome classifies an answer of POST /api/publish: "" for a
// result, "http <status>" or "api <code>: <message>" otherwise.
func cfPublishOutcome(status int, body []byte) string {
	if status != http.StatusOK {
		return "http " + strconv.Itoa(status)
	}
	var r struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "api: unreadable answer"
	}
	if r.Error != nil {
		return fmt.Sprintf("api %d: %s", r.Error.Code, r.Error.Message)
	}
	if r.Result == nil {
		return "api: answer without result"
	}
	return ""
}

// httpErrorClass names a transport error without the addresses and ports
// that would make every failure a kind of its own.
func httpErrorClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "http: connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "http: connection reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "http: timeout"
	}
	return "http: other error"
}

// cfRequest sends a command and waits for the reply with its id, answering
// pings meanwhile; ctx bounds it. An error reply, or a close frame (how
// Centrifugo refuses a bad token), is errConnectRefused.
func cfRequest(ctx context.Context, c *conn, id uint32, cmd []byte) (cfReply, error) {
	if err := c.send(ctx, cmd); err != nil {
		return cfReply{}, err
	}
	for range 64 { // pings or pushes may come first; never loop forever
		p, err := c.read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return cfReply{}, fmt.Errorf("%w: closed with %d %s", errConnectRefused, ce.Code, ce.Reason)
			}
			return cfReply{}, err
		}
		for len(p) > 0 {
			var line []byte
			line, p = cutLine(p)
			if bytes.Equal(line, cfPing) {
				if err := c.send(ctx, cfPing); err != nil {
					return cfReply{}, err
				}
				continue
			}
			r, err := parseCFReply(line)
			if err != nil {
				return cfReply{}, err
			}
			if r.ID != id {
				continue
			}
			if r.Error != nil {
				return r, fmt.Errorf("%w: %d %s", errConnectRefused, r.Error.Code, r.Error.Message)
			}
			return r, nil
		}
	}
	return cfReply{}, fmt.Errorf("%w: no reply to command %d among the first 64 messages", errFrame, id)
}

// cfReply is a reply (or push, with ID 0) of Centrifugo's JSON protocol,
// as far as setup needs it.
type cfReply struct {
	ID    uint32 `json:"id"`
	Error *struct {
		Code    uint32 `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// parseCFReply decodes one line of a server message.
func parseCFReply(line []byte) (cfReply, error) {
	var r cfReply
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("%w: %v in %q", errFrame, err, clip(line))
	}
	return r, nil
}

// cutLine splits off the first line of a message (several JSON objects may
// share one, newline-separated); a trailing '\r' and blank lines are
// dropped.
func cutLine(p []byte) (line, rest []byte) {
	line, rest, _ = bytes.Cut(p, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return line, rest
}

// appendCFConnect appends {"id":<id>,"connect":{"token":<token>}} (no token
// field when token is empty).
func appendCFConnect(b []byte, id uint32, token string) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, uint64(id), 10)
	b = append(b, `,"connect":{`...)
	if token != "" {
		b = append(b, `"token":`...)
		b = appendJSONString(b, token)
	}
	return append(b, "}}"...)
}

// appendCFSubscribe appends {"id":<id>,"subscribe":{"channel":<channel>}};
// quotedChannel is already JSON-quoted.
func appendCFSubscribe(b []byte, id uint32, quotedChannel []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendUint(b, uint64(id), 10)
	b = append(b, `,"subscribe":{"channel":`...)
	b = append(b, quotedChannel...)
	return append(b, "}}"...)
}

// appendCFPublish appends the HTTP API publish body
// {"channel":<channel>,"data":{"t":<t>,"seq":<seq>}}.
func appendCFPublish(b []byte, quotedChannel []byte, t, seq int64) []byte {
	b = append(b, `{"channel":`...)
	b = append(b, quotedChannel...)
	b = append(b, `,"data":{"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, "}}"...)
}

// parseCFPublication recognises one line
// {"push":{"channel":<channel>,"pub":{"data":{..."t":T,..."seq":S...},...}}}
// for the channel quotedChannel (JSON-quoted, compared byte for byte) and
// extracts t and seq. Members may come in any order. It never panics and
// does not allocate.
func parseCFPublication(line, quotedChannel []byte) (delivery, bool) {
	push, ok := fieldAt(line, 0, "push")
	if !ok {
		return delivery{}, false
	}
	ch, ok := fieldAt(line, push, "channel")
	if !ok || !bytes.HasPrefix(line[ch:], quotedChannel) {
		return delivery{}, false
	}
	pub, ok := fieldAt(line, push, "pub")
	if !ok {
		return delivery{}, false
	}
	data, ok := fieldAt(line, pub, "data")
	if !ok {
		return delivery{}, false
	}
	d, _, ok := scanTSeq(line, data)
	return d, ok
}

// fieldAt finds key among the members of the JSON object at p[i:] (after
// blanks) and returns where its value starts.
func fieldAt(p []byte, i int, key string) (int, bool) {
	i = skipWS(p, i)
	if i >= len(p) || p[i] != '{' {
		return 0, false
	}
	i++
	for {
		i = skipWS(p, i)
		if i < len(p) && p[i] == ',' {
			i = skipWS(p, i+1)
		}
		if i >= len(p) || p[i] == '}' {
			return 0, false
		}
		ks, ke, ok := scanString(p, i)
		if !ok {
			return 0, false
		}
		i = skipWS(p, ke+1)
		if i >= len(p) || p[i] != ':' {
			return 0, false
		}
		i = skipWS(p, i+1)
		if string(p[ks:ke]) == key {
			return i, true
		}
		if i, ok = skipValue(p, i); !ok {
			return 0, false
		}
	}
}

// cfWSURL turns a base URL into Centrifugo's websocket endpoint.
func cfWSURL(base string) (string, error) {
	u, err := parseTarget(base, true)
	if err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/connection/websocket"
	return u.String(), nil
}

// cfAPIURL turns a base URL into the HTTP API's publish endpoint.
func cfAPIURL(base string) (string, error) {
	u, err := parseTarget(base, false)
	if err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/publish"
	return u.String(), nil
}
