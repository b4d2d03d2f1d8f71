package engineio

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// handshakePolling opens a polling session: the GET is answered at once
// with the OPEN packet and whatever OnConnection queued.
func (s *Server) handshakePolling(w http.ResponseWriter, r *http.Request) {
	c := newConn(s, r, kindPolling)
	if !s.register(c) {
		writeError(w, CodeShuttingDown)
		return
	}
	if s.cfg.OnOpen != nil {
		s.cfg.OnOpen(c)
	}
	s.cfg.OnConnection(c)
	c.start()

	c.mu.Lock()
	var (
		frames []Frame
		ok     = true
	)
	if c.state == stateOpen {
		frames = c.takeLocked()
	} else {
		frames, ok = c.finalPollLocked()
	}
	c.mu.Unlock()
	if !ok {
		writeError(w, CodeUnknownSID)
		return
	}
	c.respond(w, frames)
}

// finalPollLocked returns the response to a GET on a closing session: the
// queue and a close packet when flushing, a noop after the client's own
// close, a close packet otherwise. ok is false once it was taken.
func (c *Conn) finalPollLocked() (frames []Frame, ok bool) {
	if c.finalSent {
		return nil, false
	}
	c.finalSent = true
	if c.finalDone != nil {
		close(c.finalDone)
	}
	switch {
	case c.mode == modeFlush:
		frames = append(c.takeLocked(), frameClose)
	case c.reason == ReasonTransportClose:
		frames = []Frame{frameNoop}
	default:
		frames = []Frame{frameClose}
	}
	return frames, true
}

// servePoll answers a long-polling GET: at once with the queued packets, or
// when something is queued, the session closes or an upgrade takes over.
func (c *Conn) servePoll(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.transport != kindPolling {
		c.mu.Unlock()
		writeError(w, CodeBadRequest)
		return
	}
	if c.state != stateOpen {
		frames, ok := c.finalPollLocked()
		c.mu.Unlock()
		if !ok {
			writeError(w, CodeUnknownSID)
			return
		}
		c.respond(w, frames)
		return
	}
	if c.pollActive {
		c.mu.Unlock()
		c.closeWith(ReasonTransportError, ErrPollOverlap, modeAbort, nil)
		writeError(w, CodeBadRequest)
		return
	}
	if len(c.queue) > 0 {
		frames := c.takeLocked()
		c.mu.Unlock()
		c.respond(w, frames)
		c.recycle(frames)
		return
	}
	c.pollActive = true
	gen, probed := c.probeGen, c.probed
	c.mu.Unlock()

	// A GET sent after an upgrade probe was answered gets a noop if nothing
	// else comes soon, so the client can finish pausing.
	var noop <-chan time.Time
	if probed {
		t := time.NewTimer(probeNoopDelay)
		defer t.Stop()
		noop = t.C
	}
	gone := r.Context().Done()
	for {
		timedOut := false
		select {
		case <-c.pollWake:
		case <-c.closing:
		case <-noop:
			timedOut = true
			noop = nil
		case <-gone:
			c.mu.Lock()
			c.pollActive = false
			c.mu.Unlock()
			c.closeWith(ReasonTransportError, ErrPollAborted, modeAbort, nil)
			return
		}

		c.mu.Lock()
		switch {
		case c.state != stateOpen:
			c.pollActive = false
			frames, ok := c.finalPollLocked()
			c.mu.Unlock()
			if !ok {
				writeError(w, CodeUnknownSID)
				return
			}
			c.respond(w, frames)
			return
		case c.transport != kindPolling:
			// Upgraded while this GET waited: the client had paused polling,
			// so this request is not one of its own.
			c.pollActive = false
			c.mu.Unlock()
			writeError(w, CodeBadRequest)
			return
		case len(c.queue) > 0:
			c.pollActive = false
			frames := c.takeLocked()
			c.mu.Unlock()
			c.respond(w, frames)
			c.recycle(frames)
			return
		case c.probed && (c.probeGen != gen || timedOut):
			c.pollActive = false
			c.mu.Unlock()
			c.respond(w, []Frame{frameNoop})
			return
		}
		c.mu.Unlock()
	}
}

// servePost reads a POST payload and acts on its packets in order.
func (c *Conn) servePost(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.transport != kindPolling {
		c.mu.Unlock()
		writeError(w, CodeBadRequest)
		return
	}
	if c.state != stateOpen {
		c.mu.Unlock()
		writeError(w, CodeUnknownSID)
		return
	}
	if c.postActive {
		c.mu.Unlock()
		c.closeWith(ReasonTransportError, ErrPollOverlap, modeAbort, nil)
		writeError(w, CodeBadRequest)
		return
	}
	c.postActive = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.postActive = false
		c.mu.Unlock()
	}()

	if isBinaryContentType(r.Header.Get("Content-Type")) {
		c.closeWith(ReasonTransportError, ErrBinaryPost, modeAbort, nil)
		writeError(w, CodeBadRequest)
		return
	}
	limit := c.srv.cfg.MaxPayload
	if r.ContentLength > limit {
		c.closeWith(ReasonTransportError, ErrPayloadTooLarge, modeAbort, nil)
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	packets, err := readPayload(r.Body, limit)
	switch {
	case errors.Is(err, ErrPayloadTooLarge):
		c.closeWith(ReasonTransportError, err, modeAbort, nil)
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	case err != nil && !errors.Is(err, ErrParse):
		c.closeWith(ReasonTransportError, fmt.Errorf("%w: %w", ErrPollAborted, err), modeAbort, nil)
		writeError(w, CodeBadRequest)
		return
	}
	// Packets before a malformed one are acted on, as engine.io does.
	for _, p := range packets {
		if !c.handlePacket(p) {
			break
		}
	}
	if err != nil {
		c.closeWith(ReasonParseError, err, modeClose, nil)
		writeError(w, CodeBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

func isBinaryContentType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/octet-stream"
}

// chunkPool holds read buffers for POST bodies.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// readPayload decodes a POST body of at most limit bytes. On a malformed
// packet it returns the packets before it and an error wrapping ErrParse.
func readPayload(body io.Reader, limit int64) ([]packet, error) {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp

	var (
		d     payloadDecoder
		out   []packet
		total int64
	)
	collect := func(p packet) error {
		out = append(out, p)
		return nil
	}
	for {
		n, err := body.Read(buf)
		total += int64(n)
		if total > limit {
			return nil, ErrPayloadTooLarge
		}
		if n > 0 {
			if perr := d.write(buf[:n], collect); perr != nil {
				return out, perr
			}
		}
		if err == io.EOF {
			return out, d.finish(collect)
		}
		if err != nil {
			return nil, err
		}
	}
}

// payloadPool holds encode buffers for GET responses.
var payloadPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4<<10)
	return &b
}}

// respond answers a GET with frames encoded as one payload, within
// Config.WriteTimeout: a client that stops reading its response is closed
// as a slow consumer.
func (c *Conn) respond(w http.ResponseWriter, frames []Frame) {
	timeout := c.srv.cfg.WriteTimeout
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(timeout))
	if err := writePayload(w, frames); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.closeWith(ReasonSlowConsumer, fmt.Errorf("%w: response blocked for %v: %w", ErrSlowConsumer, timeout, err), modeAbort, nil)
	}
	// The connection may carry the client's next request: no stale deadline.
	_ = rc.SetWriteDeadline(time.Time{})
}

// writePayload writes frames encoded as one payload as a GET's response.
func writePayload(w http.ResponseWriter, frames []Frame) error {
	bp := payloadPool.Get().(*[]byte)
	b := appendPayload((*bp)[:0], frames)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	if err == nil {
		// Small responses sit in net/http's buffer: push them out now,
		// under the deadline.
		err = http.NewResponseController(w).Flush()
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		payloadPool.Put(bp)
	}
	return err
}
