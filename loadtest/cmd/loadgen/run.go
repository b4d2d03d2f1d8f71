package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// parallel calls f(ctx, i) for every i in [0, n), at most k at a time, and
// returns how many calls failed and a sample of their errors (the first few
// distinct messages). It stops starting new calls once ctx is done; calls
// not started count as failed with ctx's error.
func parallel(ctx context.Context, n, k int, f func(ctx context.Context, i int) error) (int, *errorSample) {
	if k < 1 {
		k = 1
	}
	sem := make(chan struct{}, k)
	var wg sync.WaitGroup
	var failed atomic.Int64
	es := &errorSample{}
	started := 0
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started++
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				failed.Add(1)
				es.add(err)
			}
		}(i)
	}
	wg.Wait()
	if started < n {
		failed.Add(int64(n - started))
		es.add(fmt.Errorf("not started: %w", context.Cause(ctx)))
	}
	return int(failed.Load()), es
}

// errorSample counts errors by message, keeping at most maxKinds kinds.
type errorSample struct {
	mu    sync.Mutex
	kinds map[string]int64
	other int64
}

const maxErrorKinds = 8

func (e *errorSample) add(err error) {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kinds == nil {
		e.kinds = map[string]int64{}
	}
	if _, ok := e.kinds[msg]; ok || len(e.kinds) < maxErrorKinds {
		e.kinds[msg]++
		return
	}
	e.other++
}

// snapshot returns the counts (nil when there were none).
func (e *errorSample) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.kinds) == 0 && e.other == 0 {
		return nil
	}
	m := make(map[string]int64, len(e.kinds)+1)
	for k, v := range e.kinds {
		m[k] = v
	}
	if e.other > 0 {
		m["(other errors)"] = e.other
	}
	return m
}

// first returns one error message, the most frequent, for error returns.
func (e *errorSample) first() string {
	m := e.snapshot()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// connSet remembers connections so shutdown can close all of them.
type connSet struct {
	mu     sync.Mutex
	conns  []*conn
	closed bool
}

// add registers c; when the set is already closed c is closed at once and
// add reports false.
func (s *connSet) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.close()
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

// closeAll closes every registered connection, a few at a time in parallel
// (closing tens of thousands of sockets one by one takes a while).
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(conns); i += workers {
				conns[i].close()
			}
		}()
	}
	wg.Wait()
}

// waitGroupTimeout waits for wg up to d and reports whether it finished. The
// helper goroutine it starts ends when wg does; callers only use it on groups
// whose members are already being stopped.
func waitGroupTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// sleepCtx sleeps for d or until ctx is done; it reports whether the full
// duration elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
