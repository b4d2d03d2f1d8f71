package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/roomcast/roomcast/hook"
)

// Chat is the server logic of the socket.io chat tutorial
// (https://socket.io/get-started/chat, the socket.io repo's
// examples/chat/index.js) behind a Roomcast gateway:
//
//	socket.on("add user", ...)      -> OnEvent "add user": login + "user joined"
//	socket.on("new message", ...)   -> OnEvent: "new message" to the others
//	socket.on("typing"/"stop typing") -> OnEvent: the same to the others
//	socket.on("disconnect", ...)    -> OnLifecycle "disconnect": "user left"
//
// What socket.io keeps on the socket (socket.username, addedUser) is kept
// here by socket id. A client event's answer carries its emits; a
// lifecycle event has no answer to carry them, so "user left" goes through
// the gateway's HTTP API (POST /api/v1/emit).
type Chat struct {
	// Gateway is the gateway's base URL, for POST /api/v1/emit.
	Gateway string
	// APIToken is the gateway's --api-token.
	APIToken string
	// Client sends the API calls. Defaults to http.DefaultClient.
	Client *http.Client

	mu    sync.Mutex
	users map[string]string // socket id -> username, for the sockets that added a user
	seen  map[string]bool   // lifecycle event ids handled: they come at least once
}

// Handler serves the gateway's webhook and lifecycle hook on one URL.
func (c *Chat) Handler(secret []byte) http.Handler {
	return &hook.Handler{Secrets: [][]byte{secret}, OnEvent: c.onEvent, OnLifecycle: c.onLifecycle}
}

// others is an emit to every socket of the namespace but sid
// (socket.broadcast.emit).
func others(sid, event string, arg any) hook.Emit {
	return hook.Emit{Broadcast: true, Except: []string{sid}, Event: event, Args: []any{arg}}
}

func (c *Chat) onEvent(_ context.Context, req *hook.EventRequest) (*hook.EventResponse, error) {
	sid := req.Socket.Socket
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users == nil {
		c.users = map[string]string{}
	}
	username, added := c.users[sid]
	switch req.Event {
	case "add user":
		name, _ := firstString(req.Args)
		if added || name == "" {
			return &hook.EventResponse{}, nil
		}
		c.users[sid] = name
		n := len(c.users)
		return &hook.EventResponse{Emit: []hook.Emit{
			{Sockets: []string{sid}, Event: "login", Args: []any{map[string]any{"numUsers": n}}},
			others(sid, "user joined", map[string]any{"username": name, "numUsers": n}),
		}}, nil
	case "new message":
		if !added {
			return &hook.EventResponse{}, nil
		}
		msg := any(nil)
		if len(req.Args) > 0 {
			msg = req.Args[0]
		}
		return &hook.EventResponse{Emit: []hook.Emit{
			others(sid, "new message", map[string]any{"username": username, "message": msg}),
		}}, nil
	case "typing", "stop typing":
		if !added {
			return &hook.EventResponse{}, nil
		}
		return &hook.EventResponse{Emit: []hook.Emit{others(sid, req.Event, map[string]any{"username": username})}}, nil
	}
	return &hook.EventResponse{}, nil
}

func (c *Chat) onLifecycle(ctx context.Context, req *hook.LifecycleRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	for _, e := range req.Events {
		if c.seen[e.ID] {
			continue // a batch sent again
		}
		if username, ok := c.users[e.Socket]; ok && e.Type == hook.LifecycleDisconnect {
			n := len(c.users) - 1
			// On failure the batch comes again: change nothing before the emit went out.
			if err := c.emit(ctx, "user left", map[string]any{"username": username, "numUsers": n}); err != nil {
				return err
			}
			delete(c.users, e.Socket)
		}
		c.seen[e.ID] = true // a real backend would expire these
	}
	return nil
}

// emit sends event to the whole namespace "/" through the gateway's API.
func (c *Chat) emit(ctx context.Context, event string, arg any) error {
	body, _ := json.Marshal(map[string]any{"broadcast": true, "event": event, "args": []any{arg}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Gateway+"/api/v1/emit", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIToken)
	req.Header.Set("Content-Type", "application/json")
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("emit %s: HTTP %d: %s", event, resp.StatusCode, out)
	}
	return nil
}

func firstString(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	s, ok := args[0].(string)
	return s, ok
}
