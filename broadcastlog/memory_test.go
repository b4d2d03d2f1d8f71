package broadcastlog_test

import (
	"testing"
	"time"

	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/internal/logtest"
)

func TestMemory(t *testing.T) {
	logtest.Run(t, func(t testing.TB, retention time.Duration) broadcastlog.Log {
		l := broadcastlog.NewMemory(broadcastlog.MemoryConfig{Retention: retention})
		t.Cleanup(func() { _ = l.Close() })
		return l
	})
}
