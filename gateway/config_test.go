package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/socketio"
)

// TestZeroConfigDefaults: New fills a zero Config with the leaf packages'
// defaults and the gateway's own.
func TestZeroConfigDefaults(t *testing.T) {
	t.Parallel()
	g, err := New(Config{AllowAnonymous: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Shutdown(context.Background()) })
	c := g.cfg
	want := DefaultConfig()
	want.AllowAnonymous = true
	want.NodeID = c.NodeID
	if c.NodeID == "" {
		t.Error("no node id")
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config\n got %+v\nwant %+v", c, want)
	}
	e := c.Engine
	if e.MaxPayload != engineio.DefaultMaxPayload || e.MaxQueueBytes != engineio.DefaultMaxQueueBytes ||
		e.PingInterval != engineio.DefaultPingInterval || e.PingTimeout != engineio.DefaultPingTimeout ||
		e.UpgradeTimeout != engineio.DefaultUpgradeTimeout {
		t.Errorf("engine = %+v", e)
	}
	if c.RedisPrefix != adapter.DefaultPrefix || c.RecoveryWindow != socketio.DefaultRecoveryWindow ||
		c.QueueRetention != queue.DefaultRetention || c.QueueMaxLen != queue.DefaultMaxLen ||
		c.DurableRoomMembers != queue.DefaultMaxMembers {
		t.Errorf("config = %+v", c)
	}
	for name, d := range map[string]time.Duration{
		"DrainTimeout": c.DrainTimeout, "APITimeout": c.APITimeout, "EventTimeout": c.EventTimeout,
		"ReadyTimeout": c.ReadyTimeout, "ReadHeaderTimeout": c.ReadHeaderTimeout,
		"RedisConnectTimeout": c.RedisConnectTimeout,
	} {
		if d <= 0 {
			t.Errorf("%s = %v", name, d)
		}
	}
}

// TestConfigNegativesAsBefore: values New always took as "use the default"
// still are; the engine's own checks still refuse the others. A negative
// rate or cap turns that limit off (EventRate used to take the default).
func TestConfigNegativesAsBefore(t *testing.T) {
	t.Parallel()
	c := Config{Engine: engineio.Config{MaxPayload: -1}, EventRate: -1, MaxConnsPerIP: -1, DrainTimeout: -1, RecoveryWindow: -1}
	c.setDefaults()
	if c.Engine.MaxPayload != engineio.DefaultMaxPayload || c.EventRate != -1 || c.MaxConnsPerIP != -1 ||
		c.DrainTimeout != defaultDrainTimeout || c.RecoveryWindow != socketio.DefaultRecoveryWindow {
		t.Fatalf("config = %+v", c)
	}
	if z := DefaultConfig(); z.EventRate != defaultEventRate || z.ConnectRate != defaultConnectRate ||
		z.QueueMaxBytes != defaultQueueMaxBytes || z.Engine.WriteTimeout != engineio.DefaultWriteTimeout {
		t.Fatalf("defaults = %+v", z)
	}
	if _, err := New(Config{AllowAnonymous: true, Engine: engineio.Config{MaxQueueBytes: -1}}, nil); err == nil {
		t.Fatal("a negative MaxQueueBytes was accepted")
	}
}

// TestRunOwnsDrainAfterServerFailure: when one server fails, Run drains the
// node and returns only after the drain, backends closed — even while the
// other server still waits for a connection (one stuck in its request
// headers, for ReadHeaderTimeout).
func TestRunOwnsDrainAfterServerFailure(t *testing.T) {
	t.Parallel()
	g, err := New(Config{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", AllowAnonymous: true,
		ReadHeaderTimeout: 300 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _, err := g.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /socket.io/ HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept it
	g.mu.Lock()
	g.listeners[1].Close() // the admin server's Serve fails
	g.mu.Unlock()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after a server failed")
	}
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Run = %v, want the admin server's error", err)
	}
	if !errors.Is(g.Ready(), ErrDraining) {
		t.Fatalf("Ready = %v after Run returned", g.Ready())
	}
	// closeBackends is the drain's last step: done before Run returned.
	_, err = g.store.Append(context.Background(), []string{"u"}, queue.Message{Namespace: "/", Event: "e", Data: json.RawMessage(`[]`)})
	if !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("store still open after Run returned: Append = %v", err)
	}
}
