package main

import (
	"testing"

	"github.com/roomcast/roomcast/internal/leakcheck"
)

// TestMain fails the run when a test leaves a goroutine behind (read loops,
// publishers, in-process gateways, dialers).
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
