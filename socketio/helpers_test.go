package socketio

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/engineio"
)

// newTestServer starts a Server behind an httptest server; setup runs
// before it serves.
func newTestServer(t testing.TB, setup func(*Server)) (*Server, string) {
	t.Helper()
	srv, err := New(Config{Engine: engineio.Config{PingInterval: time.Second, PingTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	return srv, serve(t, srv)
}

// serve serves srv on a test HTTP server until t ends (then shuts it
// down) and returns its websocket URL.
func serve(t testing.TB, srv *Server) string {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
