// Package clock runs many deadlines from one runtime timer: the
// per-connection deadlines of a server (heartbeats, session refreshes,
// token expiries) without a timer per connection.
//
// A value is filed under the tick (a multiple of the clock's granularity
// since its start) at or after its due time; when the timer reaches a
// tick, the values filed up to it are taken off the clock and the clock's
// function runs on each, one after the other, on the timer's goroutine:
// up to one granularity after it was due, never before. A value is filed
// under one tick at most (scheduling it again moves it) and a stopped one
// is forgotten, so the clock keeps nothing of a closed connection.
package clock

import (
	"sync"
	"time"
)

// Clock is a set of deadlines of values of type T (a connection, a
// socket) served by one timer: each T has one Entry (found with the
// clock's entry function) and the clock runs the same function on each T
// whose deadline came, so a deadline costs its T sixteen bytes and
// nothing else. Its methods are safe for concurrent use.
type Clock[T any] struct {
	gran  time.Duration
	base  time.Time
	entry func(*T) *Entry
	run   func(*T)

	mu    sync.Mutex
	ticks map[int64][]*T
	timer *time.Timer
	armed int64 // the tick the timer is set for; 0: none
}

// Entry is a T's place on a Clock: keep it in the T (guarded by the
// clock's lock, never read by its owner). The zero Entry is not filed.
type Entry struct {
	tick int64 // filed under it; 0: not filed
	idx  int   // its place in that tick's list
}

// New returns a clock that rounds due times up to multiples of gran (at
// least a millisecond) and runs run on each T whose deadline came; entry
// returns a T's Entry.
func New[T any](gran time.Duration, entry func(*T) *Entry, run func(*T)) *Clock[T] {
	return &Clock[T]{gran: max(gran, time.Millisecond), base: time.Now(), entry: entry, run: run, ticks: make(map[int64][]*T)}
}

// tickOf is the first tick at or after t.
func (k *Clock[T]) tickOf(t time.Time) int64 {
	return max(int64((t.Sub(k.base)+k.gran-1)/k.gran), 1)
}

// Schedule files v to run at due (moving it if it was filed).
func (k *Clock[T]) Schedule(v *T, due time.Time) {
	n := k.tickOf(due)
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.entry(v)
	if e.tick == n {
		return
	}
	k.removeLocked(v, e)
	k.ticks[n] = append(k.ticks[n], v)
	e.tick, e.idx = n, len(k.ticks[n])-1
	if k.armed == 0 || n < k.armed {
		k.armLocked(n)
	}
}

// Stop takes v off the clock: it does not run (unless it is running
// already). It reports whether v was filed.
func (k *Clock[T]) Stop(v *T) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.entry(v)
	filed := e.tick != 0
	k.removeLocked(v, e)
	if len(k.ticks) == 0 && k.timer != nil && k.armed != 0 {
		k.timer.Stop()
		k.armed = 0
	}
	return filed
}

// Len returns the number of entries filed.
func (k *Clock[T]) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, vs := range k.ticks {
		n += len(vs)
	}
	return n
}

func (k *Clock[T]) removeLocked(v *T, e *Entry) {
	if e.tick == 0 {
		return
	}
	vs := k.ticks[e.tick]
	last := len(vs) - 1
	if moved := vs[last]; moved != v {
		vs[e.idx] = moved
		k.entry(moved).idx = e.idx
	}
	vs[last] = nil
	if last == 0 {
		delete(k.ticks, e.tick)
	} else {
		k.ticks[e.tick] = vs[:last]
	}
	e.tick, e.idx = 0, 0
}

func (k *Clock[T]) armLocked(n int64) {
	k.armed = n
	d := time.Until(k.base.Add(time.Duration(n) * k.gran))
	if k.timer == nil {
		k.timer = time.AfterFunc(d, k.fire)
	} else {
		k.timer.Reset(d)
	}
}

// fire runs on the timer's goroutine: the entries filed up to now are taken
// off the clock and run.
func (k *Clock[T]) fire() {
	last := int64(time.Since(k.base) / k.gran)
	k.mu.Lock()
	var due []*T
	next := int64(0)
	for n, vs := range k.ticks {
		if n > last {
			if next == 0 || n < next {
				next = n
			}
			continue
		}
		for _, v := range vs {
			*k.entry(v) = Entry{}
		}
		due = append(due, vs...)
		delete(k.ticks, n)
	}
	k.armed = 0
	if next != 0 {
		k.armLocked(next)
	}
	k.mu.Unlock()
	for _, v := range due {
		k.run(v)
	}
}
