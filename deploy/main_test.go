package deploy

import (
	"testing"

	"github.com/roomcast/roomcast/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
