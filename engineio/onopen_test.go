package engineio

import (
	"sync"
	"testing"
)

// TestOnOpenBeforeOnConnection: Config.OnOpen sees every new session, of
// both transports, before OnConnection and before the handshake is answered.
func TestOnOpenBeforeOnConnection(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		opened = map[string]string{} // sid -> transport at OnOpen
	)
	h := newHarnessHooks(t, Config{OnOpen: func(c *Conn) {
		mu.Lock()
		opened[c.ID()] = c.Transport()
		mu.Unlock()
	}}, hooks{onConnect: func(s *session) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := opened[s.c.ID()]; !ok {
			t.Errorf("OnConnection of %s before its OnOpen", s.c.ID())
		}
	}})
	open, _ := h.openPolling(t)
	_, wsOpen, _ := h.openWebSocket(t)
	mu.Lock()
	defer mu.Unlock()
	if opened[open.SID] != "polling" || opened[wsOpen.SID] != "websocket" {
		t.Fatalf("OnOpen saw %v, want %s polling and %s websocket", opened, open.SID, wsOpen.SID)
	}
}
