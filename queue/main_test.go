package queue_test

import (
	"testing"

	"github.com/roomcast/roomcast/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
