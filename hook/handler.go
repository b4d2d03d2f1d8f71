package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultMaxBody bounds a request body Handler reads.
const DefaultMaxBody = 1 << 20

// Handler serves the gateway's hook requests on one URL: it verifies the
// signature, decodes the body by its "type" and calls the matching
// function. A nil function answers that type with 404; an error from a
// function answers 500 (the gateway gives the client an "unavailable"
// error); a bad signature answers 401.
type Handler struct {
	// Secrets are the --hook-secret values accepted (several while one is
	// rotated). Required: a Handler without one refuses every request.
	Secrets [][]byte
	// MaxSkew bounds the timestamp's distance from now. Defaults to
	// DefaultMaxSkew.
	MaxSkew time.Duration
	// MaxBody bounds the body. Defaults to DefaultMaxBody.
	MaxBody int64

	OnEvent   func(ctx context.Context, req *EventRequest) (*EventResponse, error)
	OnConnect func(ctx context.Context, req *ConnectRequest) (*ConnectResponse, error)
	OnPublish func(ctx context.Context, req *PublishRequest) (*PublishResponse, error)
	// OnLifecycle receives a batch of lifecycle events. Returning nil
	// acknowledges the batch (200 {}); an error answers 500 and the
	// gateway sends the batch again later. Batches arrive at least once:
	// de-duplicate by LifecycleEvent.ID.
	OnLifecycle func(ctx context.Context, req *LifecycleRequest) error

	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	max := h.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
		return
	}
	if int64(len(body)) > max {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	if len(h.Secrets) == 0 {
		http.Error(w, "hook: no secret configured", http.StatusUnauthorized)
		return
	}
	if err := Verify(r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, now(), h.MaxSkew, h.Secrets...); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		http.Error(w, "bad json: "+err.Error(), http.StatusBadRequest)
		return
	}
	var resp any
	switch {
	case head.Type == TypeEvent && h.OnEvent != nil:
		resp, err = call(r.Context(), body, h.OnEvent)
	case head.Type == TypeConnect && h.OnConnect != nil:
		resp, err = call(r.Context(), body, h.OnConnect)
	case head.Type == TypePublish && h.OnPublish != nil:
		resp, err = call(r.Context(), body, h.OnPublish)
	case head.Type == TypeLifecycle && h.OnLifecycle != nil:
		var req *LifecycleRequest
		if req, err = DecodeLifecycleRequest(body); err != nil {
			err = &badRequest{err}
		} else if err = h.OnLifecycle(r.Context(), req); err == nil {
			resp = struct{}{}
		}
	default:
		http.Error(w, "no handler for type "+head.Type, http.StatusNotFound)
		return
	}
	var bad *badRequest
	switch {
	case errors.As(err, &bad):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

type badRequest struct{ err error }

func (b *badRequest) Error() string { return "bad request: " + b.err.Error() }

func call[Req, Resp any](ctx context.Context, body []byte, fn func(context.Context, *Req) (*Resp, error)) (*Resp, error) {
	req := new(Req)
	if err := json.Unmarshal(body, req); err != nil {
		return nil, &badRequest{err}
	}
	resp, err := fn(ctx, req)
	if err == nil && resp == nil {
		resp = new(Resp)
	}
	return resp, err
}

// DecodeEventResponse decodes a webhook response body as the gateway does:
// numbers stay json.Number, unknown fields are ignored, trailing data is an
// error.
func DecodeEventResponse(body []byte) (*EventResponse, error) {
	return decode[EventResponse](body)
}

// DecodeConnectResponse decodes a connect hook response body.
func DecodeConnectResponse(body []byte) (*ConnectResponse, error) {
	return decode[ConnectResponse](body)
}

// DecodePublishResponse decodes a publish hook response body.
func DecodePublishResponse(body []byte) (*PublishResponse, error) {
	return decode[PublishResponse](body)
}

// DecodeLifecycleRequest decodes a lifecycle hook request body as Handler
// does: its type must be "lifecycle" and every event needs an id and a
// type; unknown fields are ignored, trailing data is an error.
func DecodeLifecycleRequest(body []byte) (*LifecycleRequest, error) {
	req, err := decode[LifecycleRequest](body)
	if err != nil {
		return nil, err
	}
	if req.Type != TypeLifecycle {
		return nil, fmt.Errorf("hook: request type %q, want %q", req.Type, TypeLifecycle)
	}
	for i, e := range req.Events {
		if e.ID == "" || e.Type == "" {
			return nil, fmt.Errorf("hook: lifecycle event %d without id or type", i)
		}
	}
	return req, nil
}

func decode[T any](body []byte) (*T, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return new(T), nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v := new(T)
	if err := dec.Decode(v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("hook: trailing data after the response")
	}
	return v, nil
}
