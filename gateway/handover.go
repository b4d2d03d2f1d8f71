package gateway

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/roomcast/roomcast/engineio"
)

// Session handover (docs/ARCHITECTURE.md, "Polling without sticky
// sessions"): a websocket upgrade for a polling session another node holds
// is not tunnelled to that node; this node takes the session over
// (engineio.Server.ServeHandover), so the client ends up on the node that
// holds its websocket. The two nodes talk over handoverPath on the
// client-facing listener, with the cluster secret, as forwarded requests
// do: begin (the owner answers the pending GET with a noop) and take (the
// owner stops the session and returns its unsent frames and its sockets).

const (
	// handoverPath is the owner's endpoint. A node without it answers
	// 404: the upgrade is then forwarded to the owner as before.
	handoverPath = "/roomcast/v1/handover"
	// handoverTimeout bounds the owner's side of a take: the client's
	// pause and the handlers' work it waits for, and the sessions' saves.
	handoverTimeout = 5 * time.Second
)

// serveHandover is the owner's side: phase=begin or take for session sid
// held here.
func (f *forwarder) serveHandover(w http.ResponseWriter, r *http.Request) {
	v, ok := r.Header[forwardHeader]
	if !ok || len(v) != 1 || subtle.ConstantTimeCompare([]byte(v[0]), []byte(f.secret)) != 1 {
		f.requests.WithLabelValues(fwdForbidden).Inc()
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	cv, ok := f.local.Load(q.Get("sid"))
	if !ok {
		http.Error(w, "unknown session", http.StatusGone)
		return
	}
	c := cv.(*engineio.Conn)
	switch q.Get("phase") {
	case "begin":
		if err := c.BeginHandover(); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "take":
		ctx, cancel := context.WithTimeout(r.Context(), handoverTimeout)
		defer cancel()
		h, err := c.Handover(ctx)
		if err != nil {
			f.log.Info("roomcast gateway: session not handed over", "sid", c.ID(), "err", err)
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		// The session is closing: the refresh loop deletes its record.
		body, err := h.MarshalJSON()
		if err != nil { // the client reconnects and recovers
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	default:
		http.Error(w, "phase is begin or take", http.StatusBadRequest)
	}
}

// handoverSource is the new node's side: it reaches the owner o of sid.
type handoverSource struct {
	f        *forwarder
	o        *owner
	sid      string
	maxBytes int // of the frames a take may bring (the engine's queue cap)
}

var _ engineio.HandoverSource = (*handoverSource)(nil)

func (h *handoverSource) call(ctx context.Context, phase string) (*http.Response, error) {
	u := *h.o.target
	u.Path = strings.TrimRight(u.Path, "/") + handoverPath
	u.RawQuery = url.Values{"sid": {h.sid}, "phase": {phase}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(forwardHeader, h.f.secret)
	return h.f.client.Do(req)
}

// Begin implements engineio.HandoverSource.
func (h *handoverSource) Begin(ctx context.Context) error {
	h.f.requests.WithLabelValues(fwdHandover).Inc()
	resp, err := h.call(ctx, "begin")
	if err != nil {
		h.f.owners.Delete(h.sid)
		h.f.requests.WithLabelValues(fwdOwnerGone).Inc()
		return err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil
	case http.StatusNotFound:
		return engineio.ErrHandoverUnsupported
	case http.StatusConflict:
		return engineio.ErrHandoverRefused
	}
	return fmt.Errorf("gateway: handover begin: owner answered %s", resp.Status)
}

// Take implements engineio.HandoverSource.
func (h *handoverSource) Take(ctx context.Context) (*engineio.Handover, error) {
	resp, err := h.call(ctx, "take")
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("gateway: handover take: owner answered %s", resp.Status)
	}
	// Frames of at most maxBytes, base64 in JSON, plus the sockets' state.
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(h.maxBytes)*2+1<<20))
	if err != nil {
		return nil, err
	}
	return engineio.DecodeHandover(body, h.maxBytes)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
