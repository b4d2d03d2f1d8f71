package leakcheck

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DefaultTimeout is how long Check and VerifyTestMain wait for goroutines to
// exit before they call them leaked.
const DefaultTimeout = 5 * time.Second

// ignoredFuncs are functions whose presence anywhere in a goroutine's stack
// marks it as owned by the test runner, the runtime or signal handling.
var ignoredFuncs = []string{
	"testing.tRunner",
	"testing.(*M).Run",
	"testing.(*M).startAlarm",
	"testing.runTests",
	"testing.runFuzzTests",
	"testing.runFuzzing",
	"testing.(*F).Fuzz",
	"testing.runExamples",
	"os/signal.signal_recv",
	"os/signal.loop",
	"runtime.ensureSigM",
	"runtime/pprof.profileWriter",
	"runtime.ReadTrace",
	"runtime/trace.Start.func1",
	"internal/fuzz.",
}

// Check fails t if goroutines other than the caller's and the test runner's
// are still running DefaultTimeout after the call. Use it at the end of a
// test or from t.Cleanup:
//
//	t.Cleanup(func() { leakcheck.Check(t) })
func Check(t testing.TB) {
	t.Helper()
	check(t, DefaultTimeout)
}

func check(t testing.TB, timeout time.Duration) {
	t.Helper()
	if leaked := wait(timeout); len(leaked) > 0 {
		t.Errorf("leakcheck: %d goroutine(s) still running after %v:\n\n%s",
			len(leaked), timeout, strings.Join(leaked, "\n\n"))
	}
}

// VerifyTestMain runs the tests of m, then waits up to DefaultTimeout for
// every goroutine the tests started to exit. If some remain their stacks are
// printed and the process exits with status 1; otherwise it exits with the
// tests' own status.
//
//	func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
func VerifyTestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := wait(DefaultTimeout); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: %d goroutine(s) still running after the tests:\n\n%s\n",
				len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// wait polls until no interesting goroutine is left or timeout passes, and
// returns the stacks of the ones still alive.
func wait(timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		leaked := interesting()
		if len(leaked) == 0 || !time.Now().Before(deadline) {
			return leaked
		}
		time.Sleep(delay)
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// interesting returns the stacks of goroutines that are neither the caller
// nor owned by the test runner or the runtime.
func interesting() []string {
	self := currentID()
	var out []string
	for _, g := range strings.Split(allStacks(), "\n\n") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		id, ok := goroutineID(g)
		if !ok || id == self || ignored(g) {
			continue
		}
		out = append(out, g)
	}
	return out
}

func allStacks() string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineID parses the "goroutine N [state]:" header of one stack.
func goroutineID(stack string) (uint64, bool) {
	const prefix = "goroutine "
	if !strings.HasPrefix(stack, prefix) {
		return 0, false
	}
	rest := stack[len(prefix):]
	end := strings.IndexByte(rest, ' ')
	if end < 0 {
		return 0, false
	}
	id, err := strconv.ParseUint(rest[:end], 10, 64)
	return id, err == nil
}

func currentID() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _ := goroutineID(string(bytes.TrimSpace(buf)))
	return id
}

// ignored reports whether any frame of stack is a function in ignoredFuncs.
func ignored(stack string) bool {
	for _, line := range strings.Split(stack, "\n") {
		if line == "" || line[0] == '\t' || strings.HasPrefix(line, "goroutine ") {
			continue
		}
		fn := strings.TrimPrefix(line, "created by ")
		if i := strings.Index(fn, " in goroutine "); i >= 0 {
			fn = fn[:i]
		} else if i := strings.LastIndexByte(fn, '('); i > 0 {
			fn = fn[:i]
		}
		for _, ig := range ignoredFuncs {
			if fn == ig || strings.HasPrefix(fn, ig+".") || (strings.HasSuffix(ig, ".") && strings.HasPrefix(fn, ig)) {
				return true
			}
		}
	}
	return false
}
