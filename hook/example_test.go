package hook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/roomcast/roomcast/hook"
)

// A backend answering client events: "hello" is acknowledged with a
// greeting and tells the socket's rooms that the user arrived.
func ExampleHandler() {
	h := &hook.Handler{
		Secrets: [][]byte{[]byte("the --hook-secret")},
		OnEvent: func(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
			if req.Event != "hello" {
				return &hook.EventResponse{Ack: []any{map[string]any{"error": "unknown event"}}}, nil
			}
			return &hook.EventResponse{
				Ack:  []any{"hello, " + req.User},
				Join: []string{"lobby"},
				Emit: []hook.Emit{{Rooms: []string{"lobby"}, Except: []string{req.Socket.Socket}, Event: "arrived", Args: []any{req.User}}},
			}, nil
		},
	}
	http.Handle("/hook", h)
	fmt.Println("serving")
	// Output: serving
}

// Checking a request's signature by hand, as docs/HOOKS.md ("Signatures")
// shows: against the raw body, before parsing it. A request signed with
// another secret is refused.
func ExampleVerify() {
	secret := []byte("the --hook-secret")
	handler := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := hook.Verify(r.Header.Get(hook.HeaderTimestamp), r.Header.Get(hook.HeaderSignature),
			body, time.Now(), hook.DefaultMaxSkew, secret)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "verified")
	}
	body := []byte(`{"type":"event","id":"x","event":"hello","args":[]}`)
	for _, key := range [][]byte{secret, []byte("not the secret")} {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
		r.Header.Set(hook.HeaderTimestamp, ts)
		r.Header.Set(hook.HeaderSignature, hook.Sign(key, ts, body))
		w := httptest.NewRecorder()
		handler(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 200 verified
	// 401 hook: signature mismatch
}
