package socketio

// Handover: a client's sockets moving with its Engine.IO session to the
// node that received its websocket upgrade (engineio/handover.go). On the
// node that held them each socket disconnects with
// engineio.ReasonHandover, which keeps its session for recovery like any
// unexpected disconnect; on the new node each is recovered from that
// session without a CONNECT from the client: the same sid and pid, its
// rooms, and what the node's broadcasts and the user's queue sent after
// the offset the old node had reached — the offset its last queued frame
// carried, so that nothing is sent twice or skipped. The client sees
// neither: no disconnect, no CONNECT reply. A socket that cannot be
// recovered there (its session or the log's part of it gone, its token
// refused by a middleware) closes the connection instead, and the client
// reconnects as after any network failure.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/roomcast/roomcast/engineio"
)

// handoverState is what the new node needs of each socket of the client.
type handoverState struct {
	Sockets []handoverSocket `json:"sockets"`
}

type handoverSocket struct {
	Namespace string         `json:"nsp"`
	PID       string         `json:"pid"`
	Offset    string         `json:"offset"`
	Auth      map[string]any `json:"auth"`
}

// maxHandoverSockets bounds the sockets of a decoded state (a client has
// one per namespace it joined).
const maxHandoverSockets = 1024

// decodeHandoverState decodes a state that onHandover encoded.
func decodeHandoverState(b []byte) (*handoverState, error) {
	var st handoverState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("socketio: handover state: %w", err)
	}
	if len(st.Sockets) > maxHandoverSockets {
		return nil, fmt.Errorf("socketio: handover state: %d sockets", len(st.Sockets))
	}
	for _, s := range st.Sockets {
		if s.PID == "" || len(s.PID) > 128 || s.Namespace == "" || s.Namespace[0] != '/' {
			return nil, errors.New("socketio: handover state: a socket without a pid or namespace")
		}
	}
	return &st, nil
}

// handoverPoll is how often onHandover looks whether the sockets' handler
// goroutines (Socket.Go) finished.
const handoverPoll = 5 * time.Millisecond

// onHandover implements engineio.Handlers.OnHandover. With the client
// paused, it waits for the work the sockets' handlers started (Socket.Go:
// a webhook's answer is an ack the client waits for) so that its acks go
// with the session, stops the session, and disconnects each socket with
// ReasonHandover, waiting until its session is stored.
func (c *client) onHandover(ctx context.Context, stop func() error) ([]byte, error) {
	r, ok := c.srv.ext.(*recovery)
	if !ok {
		return nil, engineio.ErrHandoverRefused
	}
	c.mu.Lock()
	socks := append([]*Socket(nil), c.sockets...)
	c.mu.Unlock()
	for _, s := range socks {
		for s.working.Load() > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("socketio: handover: handlers still running: %w", ctx.Err())
			case <-time.After(handoverPoll):
			}
		}
	}
	if err := stop(); err != nil {
		return nil, err
	}
	// Nothing is sent from here on: each socket's offset is final.
	c.mu.Lock()
	c.closed = true
	c.stopTimerLocked()
	socks = c.sockets
	c.sockets = nil
	c.mu.Unlock()
	st := handoverState{Sockets: make([]handoverSocket, 0, len(socks))}
	for _, s := range socks {
		rs := s.recoveryState()
		if rs == nil || !rs.attached.Load() {
			continue
		}
		auth := maps.Clone(s.auth)
		delete(auth, "pid")
		delete(auth, "offset")
		rs.tailMu.Lock()
		offset := rs.offsetString()
		rs.tailMu.Unlock()
		st.Sockets = append(st.Sockets, handoverSocket{Namespace: s.nsp.name, PID: rs.pid, Offset: offset, Auth: auth})
	}
	for _, s := range socks {
		s.cleanup(engineio.ReasonHandover)
	}
	for _, hs := range st.Sockets {
		r.awaitDisconnectSave(ctx, hs.PID)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("socketio: handover: sessions not stored: %w", err)
	}
	c.srv.cfg.Metrics.HandedOver(false)
	return json.Marshal(st)
}

// adopt restores the sockets of a client whose session was handed over to
// this node (engineio.Conn.Adopted), in the order they connected. It runs
// in OnConnection, before the connection reads.
func (c *client) adopt(state []byte) {
	st, err := decodeHandoverState(state)
	if err != nil {
		c.srv.log.Warn("socketio: handover state refused; closing so the client reconnects", "sid", c.conn.ID(), "err", err)
		c.closeWith(engineio.ReasonTransportError)
		return
	}
	for _, hs := range st.Sockets {
		n, ok := c.srv.lookup(hs.Namespace)
		if !ok {
			c.closeWith(engineio.ReasonTransportError)
			return
		}
		auth := hs.Auth
		if auth == nil {
			auth = map[string]any{}
		}
		auth["pid"], auth["offset"] = hs.PID, hs.Offset
		if !n.connectAs(c, auth, true) {
			return
		}
	}
	c.srv.cfg.Metrics.HandedOver(true)
}

// HandedOver reports whether the socket came to this node with its
// client's session (a websocket upgrade that reached this node while
// another held the polling session): the client did not send a CONNECT,
// and a middleware that counts connects may skip it. It is recovered.
func (s *Socket) HandedOver() bool { return s.adopted }
