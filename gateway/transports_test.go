package gateway

import (
	"github.com/roomcast/roomcast/engineio"
	"net/http"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/sitest"
)

// TestTransportsWebSocketOnly: --transports websocket refuses polling
// handshakes (Engine.IO's "Transport unknown") and serves websockets.
func TestTransportsWebSocketOnly(t *testing.T) {
	t.Parallel()
	n := start(t, Config{AllowAnonymous: true, Engine: engineConfig("websocket")})
	code, body := get(t, n.base+"/socket.io/?EIO=4&transport=polling")
	if code != http.StatusBadRequest || !strings.Contains(body, `"code":0`) {
		t.Fatalf("polling handshake: %d %s, want 400 code 0", code, body)
	}
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", "")
}

func TestTransportsRefusesUnknown(t *testing.T) {
	t.Parallel()
	cfg := Config{AllowAnonymous: true, Engine: engineConfig("websocket", "webtransport")}
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "--transports") {
		t.Fatalf("New: %v, want a --transports error", err)
	}
}

func engineConfig(transports ...string) (c engineio.Config) {
	c.Transports = transports
	return c
}
