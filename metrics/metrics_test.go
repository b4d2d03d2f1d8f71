package metrics

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomcast/roomcast/engineio"
)

// TestNilSafe: a library user without metrics calls every method on a nil
// *Metrics and gets no panic.
func TestNilSafe(t *testing.T) {
	var m *Metrics
	m.Connected("polling", "/")
	m.Disconnected(engineio.ReasonTransportClose, "polling", "/")
	m.Upgraded("polling", "websocket", "/")
	m.ConnectRefused("auth")
	m.ConnectionClosed(engineio.ReasonSlowConsumer)
	m.VolatileDropped()
	m.Recovery("recovered")
	m.APIRequest("emit", 200)
	m.Broadcast(true, 3, time.Now())
	m.RedisCommand("xadd", time.Now(), errors.New("x"))
	m.RedisError("subscribe")
	m.QueueAppended(1)
	m.QueueReplay(1)
	m.SetNodes(2)
	tr := m.Transport("websocket")
	tr.Sent()
	tr.Received()
}

// TestLabelsFromReasons: every disconnect reason is a label value from the
// first scrape, and the methods count under the same names as before.
func TestLabelsFromReasons(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg, "roomcast_disconnects_total")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(engineio.Reasons()); n != want {
		t.Fatalf("roomcast_disconnects_total has %d series, want %d", n, want)
	}
	m.Connected("websocket", "/")
	m.Disconnected(engineio.ReasonSlowConsumer, "websocket", "/")
	m.ConnectionClosed(engineio.ReasonSlowConsumer)
	m.ConnectionClosed(engineio.ReasonPingTimeout)
	m.APIRequest("emit", 503)
	m.Transport("polling").Sent()
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.Connects.WithLabelValues("/")), 1, "connects"},
		{testutil.ToFloat64(m.Connections.WithLabelValues("websocket", "/")), 0, "connections"},
		{testutil.ToFloat64(m.Disconnects.WithLabelValues("slow consumer")), 1, "disconnects"},
		{testutil.ToFloat64(m.SlowConsumerDisconnect), 1, "slow consumers"},
		{testutil.ToFloat64(m.APIRequests.WithLabelValues("emit", "503")), 1, "api requests"},
		{testutil.ToFloat64(m.PacketsSent.WithLabelValues("polling")), 1, "packets sent"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestBroadcastScopes(t *testing.T) {
	m, err := New(prometheus.NewRegistry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Broadcast(false, 3, time.Now())
	m.Broadcast(true, 2, time.Time{})
	if l, r := testutil.ToFloat64(m.Broadcasts.WithLabelValues("local")), testutil.ToFloat64(m.Broadcasts.WithLabelValues("remote")); l != 1 || r != 1 {
		t.Fatalf("broadcasts local %v remote %v, want 1 and 1", l, r)
	}
	if d := testutil.ToFloat64(m.Deliveries); d != 5 {
		t.Fatalf("deliveries %v, want 5", d)
	}
}
