package hook_test

import (
	"context"
	"fmt"
	"net/http"

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
