package leakcheck

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errors, "\n")
}

//go:noinline
func leakyWorker(stop <-chan struct{}, done chan<- struct{}) {
	<-stop
	close(done)
}

func TestCheckReportsLeak(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go leakyWorker(stop, done)
	t.Cleanup(func() {
		close(stop)
		<-done
	})

	rec := &recorder{TB: t}
	check(rec, 50*time.Millisecond)
	got := rec.failures()
	if !strings.Contains(got, "leakyWorker") {
		t.Fatalf("Check did not report the blocked goroutine; failures:\n%s", got)
	}
}

func TestCheckWaitsForExit(t *testing.T) {
	done := make(chan struct{})
	go func() {
		time.Sleep(30 * time.Millisecond)
		close(done)
	}()

	rec := &recorder{TB: t}
	check(rec, 5*time.Second)
	if got := rec.failures(); got != "" {
		t.Fatalf("Check reported a goroutine that exited in time:\n%s", got)
	}
	<-done
}

func TestCheckCleanProcess(t *testing.T) {
	rec := &recorder{TB: t}
	check(rec, time.Second)
	if got := rec.failures(); got != "" {
		t.Fatalf("Check reported leaks with no extra goroutine:\n%s", got)
	}
}

func TestIgnored(t *testing.T) {
	tests := []struct {
		name  string
		stack string
		want  bool
	}{
		{
			name: "test body",
			stack: "goroutine 7 [chan receive]:\n" +
				"example.com/x.TestFoo(0xc000102000)\n\t/x/foo_test.go:10 +0x25\n" +
				"testing.tRunner(0xc000102000, 0x5a0b10)\n\t/go/src/testing/testing.go:1792 +0xf4\n" +
				"created by testing.(*T).Run in goroutine 1\n\t/go/src/testing/testing.go:1851 +0x413",
			want: true,
		},
		{
			name: "alarm closure",
			stack: "goroutine 9 [running]:\n" +
				"testing.(*M).startAlarm.func1()\n\t/go/src/testing/testing.go:2400 +0x25\n" +
				"created by time.goFunc\n\t/go/src/time/sleep.go:215 +0x2d",
			want: true,
		},
		{
			name: "signal loop",
			stack: "goroutine 5 [syscall]:\n" +
				"os/signal.signal_recv()\n\t/go/src/runtime/sigqueue.go:152 +0x29\n" +
				"os/signal.loop()\n\t/go/src/os/signal/signal_unix.go:23 +0x13",
			want: true,
		},
		{
			name: "leaked worker created by a test",
			stack: "goroutine 12 [chan receive]:\n" +
				"example.com/x.worker(0xc0000a0000)\n\t/x/worker.go:8 +0x25\n" +
				"created by example.com/x.TestFoo in goroutine 7\n\t/x/foo_test.go:9 +0x66",
			want: false,
		},
		{
			name: "http keep-alive reader",
			stack: "goroutine 30 [select]:\n" +
				"net/http.(*persistConn).readLoop(0xc0001b8000)\n\t/go/src/net/http/transport.go:2395 +0xc8a\n" +
				"created by net/http.(*Transport).dialConn in goroutine 29\n\t/go/src/net/http/transport.go:1944 +0x174f",
			want: false,
		},
		{
			name: "prefix of an ignored name is not ignored",
			stack: "goroutine 31 [select]:\n" +
				"testing.tRunnerX()\n\t/x/y.go:1 +0x1",
			want: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ignored(tt.stack); got != tt.want {
				t.Errorf("ignored() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGoroutineID(t *testing.T) {
	tests := []struct {
		in     string
		want   uint64
		wantOK bool
	}{
		{"goroutine 42 [running]:\nmain.main()", 42, true},
		{"goroutine 1 [chan receive, 3 minutes]:", 1, true},
		{"not a stack", 0, false},
		{"goroutine x [running]:", 0, false},
		{"goroutine 7", 0, false},
	}
	for _, tt := range tests {
		got, ok := goroutineID(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("goroutineID(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
	if currentID() == 0 {
		t.Error("currentID() = 0")
	}
}
