package clock

import (
	"sync"
	"testing"
	"time"
)

type item struct {
	e    Entry
	name string
}

type recorder struct {
	mu  sync.Mutex
	ran map[string]time.Time
}

func (r *recorder) run(it *item) {
	r.mu.Lock()
	r.ran[it.name] = time.Now()
	r.mu.Unlock()
}

func (r *recorder) get(name string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.ran[name]
	return t, ok
}

func newTestClock(gran time.Duration) (*Clock[item], *recorder) {
	r := &recorder{ran: map[string]time.Time{}}
	return New(gran, func(it *item) *Entry { return &it.e }, r.run), r
}

// TestRunsAtOrAfterDue: each value runs once, never before its due time;
// a moved value runs at its new time only; a stopped one never.
func TestRunsAtOrAfterDue(t *testing.T) {
	k, r := newTestClock(5 * time.Millisecond)
	start := time.Now()
	items := map[string]*item{}
	for _, n := range []string{"a", "b", "c", "moved", "stopped"} {
		items[n] = &item{name: n}
	}
	due := map[string]time.Duration{"a": 20 * time.Millisecond, "b": 20 * time.Millisecond, "c": 60 * time.Millisecond, "moved": 10 * time.Millisecond, "stopped": 30 * time.Millisecond}
	for n, d := range due {
		k.Schedule(items[n], start.Add(d))
	}
	if k.Len() != 5 {
		t.Fatalf("Len %d, want 5", k.Len())
	}
	k.Schedule(items["moved"], start.Add(80*time.Millisecond))
	due["moved"] = 80 * time.Millisecond
	if !k.Stop(items["stopped"]) || k.Stop(items["stopped"]) {
		t.Fatal("Stop: want true once, then false")
	}
	deadline := time.Now().Add(5 * time.Second)
	for k.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	for n, d := range due {
		at, ok := r.get(n)
		switch {
		case n == "stopped":
			if ok {
				t.Errorf("stopped value ran")
			}
		case !ok:
			t.Errorf("%s never ran", n)
		case at.Before(start.Add(d)):
			t.Errorf("%s ran %v after start, due at %v", n, at.Sub(start), d)
		}
	}
}

// TestManyValuesMovingAndStopping: values filed, moved and stopped from
// many goroutines stay consistent: each filed value is in the list of its
// tick at its index, and the clock ends empty and unarmed.
func TestManyValuesMovingAndStopping(t *testing.T) {
	k, _ := newTestClock(time.Millisecond)
	items := make([]*item, 500)
	for i := range items {
		items[i] = &item{}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(items); i += 4 {
				for j := range 5 {
					k.Schedule(items[i], time.Now().Add(time.Duration(50+j*7+i%13)*time.Millisecond))
				}
				if i%3 == 0 {
					k.Stop(items[i])
				}
			}
		}()
	}
	wg.Wait()
	k.mu.Lock()
	for tick, vs := range k.ticks {
		for i, v := range vs {
			if v.e.tick != tick || v.e.idx != i {
				t.Fatalf("value filed under %d at %d says %d at %d", tick, i, v.e.tick, v.e.idx)
			}
		}
	}
	k.mu.Unlock()
	for _, it := range items {
		k.Stop(it)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.ticks) != 0 || k.armed != 0 {
		t.Fatalf("after stopping everything: %d ticks, armed %d", len(k.ticks), k.armed)
	}
}
