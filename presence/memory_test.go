package presence_test

import (
	"testing"

	"github.com/roomcast/roomcast/internal/leakcheck"
	"github.com/roomcast/roomcast/presence"
	"github.com/roomcast/roomcast/presence/internal/presencetest"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func TestMemoryContract(t *testing.T) {
	presencetest.Run(t, func(t *testing.T) presence.Store { return presence.NewMemory(presence.MemoryConfig{}) })
}
