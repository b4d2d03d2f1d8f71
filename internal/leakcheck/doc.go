// Package leakcheck finds goroutines that outlive the tests which started them.
//
// It is a small, dependency-free checker in the spirit of coder/websocket's
// main_test.go: after a test (Check) or after a whole test binary
// (VerifyTestMain) it takes runtime.Stack of every goroutine, drops the ones
// that belong to the testing package, the runtime or signal handling, and
// polls for up to five seconds for the rest to exit. Whatever is still alive
// then is reported with its full stack.
//
// Concurrency contract: Check and VerifyTestMain may be called from any
// goroutine. Check looks at every goroutine in the process, so it is only
// meaningful for tests that do not run in parallel with other tests that
// own goroutines; use VerifyTestMain for whole-package checking.
package leakcheck
