package auth

import (
	"testing"

	"github.com/roomcast/roomcast/internal/leakcheck"
)

// TestMain fails the package if a test leaves a goroutine running: every
// KeySet goroutine must stop on Close.
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
