package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// handoffPlan is one interleaving of appends around a Replay: before the
// replay, around each backlog page read, inside sends made while the
// backlog is being handed over, and after Replay returned.
type handoffPlan struct {
	pre        int   // appends before Replay
	skip       int   // the offset is the ID of the skip-th pre append (0: a floor before all)
	pageSize   int   // Replay's page size
	maxLen     int64 // stream bound (0: default), small values make trimming race the replay
	beforeRead []int // appends before the i-th page read (cyclic, first hookCalls reads)
	afterRead  []int // appends after the i-th page read returned (cyclic, first hookCalls reads)
	duringSend []int // appends inside the i-th send before Replay returned (cyclic, first hookCalls sends; Memory only)
	post       int   // appends after Replay returned
}

func (p handoffPlan) String() string {
	return fmt.Sprintf("pre=%d skip=%d page=%d maxlen=%d before=%v after=%v send=%v post=%d",
		p.pre, p.skip, p.pageSize, p.maxLen, p.beforeRead, p.afterRead, p.duringSend, p.post)
}

// planFrom decodes a fuzz input.
func planFrom(b []byte) handoffPlan {
	next := func() int {
		if len(b) == 0 {
			return 0
		}
		v := int(b[0])
		b = b[1:]
		return v
	}
	var p handoffPlan
	p.pre = next() % 16
	p.skip = next() % (p.pre + 1)
	p.pageSize = next()%6 + 1
	p.maxLen = []int64{0, 0, 0, 6, 20}[next()%5]
	list := func() []int {
		n := next() % 5
		out := make([]int, n)
		for i := range out {
			out[i] = next() % 5
		}
		return out
	}
	p.beforeRead, p.afterRead, p.duringSend = list(), list(), list()
	p.post = next() % 6
	return p
}

// hookStore runs callbacks around the page reads of a Replay.
type hookStore struct {
	Store
	before, after func(call int)
	calls         int
}

func (h *hookStore) Read(ctx context.Context, user, after string, limit int) ([]Message, error) {
	h.calls++
	if h.before != nil {
		h.before(h.calls - 1)
	}
	msgs, err := h.Store.Read(ctx, user, after, limit)
	if h.after != nil {
		h.after(h.calls - 1)
	}
	return msgs, err
}

// hookCalls bounds the reads and sends that append, so that a plan
// appending faster than pages are read still ends.
const hookCalls = 8

func cyclic(s []int, i int) int {
	if len(s) == 0 || i >= hookCalls {
		return 0
	}
	return s[i%len(s)]
}

// runHandoff plays p against st and checks the replay property: the
// messages sent are exactly the stream after the offset, in order, once
// each — or, when the offset expired, a prefix of it (nothing at all when
// it had expired before Replay started).
func runHandoff(t testing.TB, st Store, p handoffPlan, async bool) {
	t.Helper()
	ctx := testCtx(t)
	const user = "u"
	floor := mustLast(t, st, user)
	var appended []string // every appended ID, in stream order (one appender)
	app := func(n int) {
		for range n {
			id, err := st.Append(ctx, []string{user}, msgN(len(appended)))
			if errors.Is(err, ErrQueueFull) {
				return // a small MaxLen: the stream refuses, and keeps its history
			}
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
			appended = append(appended, id[0])
		}
	}
	app(p.pre)
	after := floor
	if p.skip > 0 {
		after = appended[min(p.skip, len(appended))-1] // a full stream took fewer
	}
	_, preErr := st.Read(ctx, user, after, 1)
	expiredBefore := errors.Is(preErr, ErrOffsetExpired)

	var (
		mu        sync.Mutex
		sent      []Message
		sends     int
		returned  atomic.Bool
		endErrs   []error
		allowSync = !async // appends from send only where delivery is synchronous
	)
	hs := &hookStore{Store: st,
		before: func(i int) { app(cyclic(p.beforeRead, i)) },
		after:  func(i int) { app(cyclic(p.afterRead, i)) },
	}
	send := func(m Message) error {
		mu.Lock()
		sent = append(sent, m)
		i := sends
		sends++
		mu.Unlock()
		if allowSync && !returned.Load() {
			app(cyclic(p.duringSend, i))
		}
		return nil
	}
	onEnd := func(err error) {
		mu.Lock()
		endErrs = append(endErrs, err)
		mu.Unlock()
	}
	stop, err := Replay(ctx, hs, user, after, p.pageSize, send, onEnd)
	returned.Store(true)
	if err == nil {
		app(p.post)
	}
	var want []string
	for _, id := range appended {
		if c, _ := CompareOffsets(id, after); c > 0 {
			want = append(want, id)
		}
	}
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return ids(sent)
	}
	switch {
	case err == nil:
		if expiredBefore {
			t.Fatalf("%v: Replay succeeded from an offset that had expired", p)
		}
		if async {
			deadline := time.Now().Add(15 * time.Second)
			for len(got()) < len(want) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // room for a duplicate to show up
		}
		if g := got(); !slices.Equal(g, want) {
			t.Fatalf("%v: sent %d messages %v\nwant %d %v", p, len(g), g, len(want), want)
		}
		stop()
		stop()
		app(2)
		if async {
			time.Sleep(50 * time.Millisecond)
		}
		if g := got(); len(g) != len(want) {
			t.Fatalf("%v: %d messages sent after stop", p, len(g)-len(want))
		}
		mu.Lock()
		defer mu.Unlock()
		if len(endErrs) != 0 {
			t.Fatalf("%v: onEnd called after stop: %v", p, endErrs)
		}
	case errors.Is(err, ErrOffsetExpired):
		g := got()
		if expiredBefore && len(g) != 0 {
			t.Fatalf("%v: offset had expired, yet %d messages were sent", p, len(g))
		}
		if len(g) > len(want) || !slices.Equal(g, want[:len(g)]) {
			t.Fatalf("%v: expired replay sent %v, not a prefix of %v", p, g, want)
		}
		if p.maxLen == 0 && !expiredBefore {
			t.Fatalf("%v: expired without trimming: %v (sent %d, want %d)", p, err, len(g), len(want))
		}
	default:
		t.Fatalf("%v: Replay: %v", p, err)
	}
}

func memoryHandoff(t testing.TB, p handoffPlan) {
	t.Helper()
	st, err := NewMemory(MemoryConfig{MaxLen: p.maxLen})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runHandoff(t, st, p, false)
}

// FuzzReplayHandoff explores interleavings of appends with a Replay on the
// in-memory store, whose deliveries are synchronous and so reproducible.
func FuzzReplayHandoff(f *testing.F) {
	seeds := [][]byte{
		{},
		{5, 0, 2, 0, 0, 0, 0, 0}, // backlog only
		{10, 3, 3, 0, 2, 1, 2, 2, 3, 0, 1, 2, 3, 1, 4}, // appends between pages and during sends
		{0, 0, 1, 0, 3, 4, 4, 4, 3, 4, 4, 4, 0, 5},     // empty backlog, appends around every read
		{15, 15, 6, 1, 1, 1, 1, 1, 0, 2, 2, 3},         // offset at the end
		{12, 0, 1, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}, // trimming races the replay
		{9, 2, 2, 4, 2, 3, 0, 2, 1, 4, 2, 4, 4, 3},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		memoryHandoff(t, planFrom(b))
	})
}

// TestReplayHandoffRandom runs many random plans in every test run.
func TestReplayHandoffRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 400 {
		b := make([]byte, 24)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		memoryHandoff(t, planFrom(b))
	}
}

// TestReplayHandoffRedis plays scripted interleavings against a real Redis,
// where live deliveries arrive asynchronously on the pub/sub connection.
func TestReplayHandoffRedis(t *testing.T) {
	t.Parallel()
	newStore := redisFactory(t)
	plans := []handoffPlan{
		{pre: 5, pageSize: 2},
		{pre: 0, pageSize: 3, beforeRead: []int{3}, afterRead: []int{2}, post: 4},
		{pre: 10, skip: 4, pageSize: 3, beforeRead: []int{1, 0, 2}, afterRead: []int{2, 1}, post: 3},
		{pre: 7, skip: 7, pageSize: 1, afterRead: []int{4}, post: 2},
		{pre: 30, skip: 5, pageSize: 4, beforeRead: []int{2}, afterRead: []int{3}, post: 10},
		{pre: 12, pageSize: 2, maxLen: 6, beforeRead: []int{4}, afterRead: []int{4}},
		{pre: 3, skip: 1, pageSize: 100, afterRead: []int{20}, post: 20},
	}
	for i, p := range plans {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			runHandoff(t, newStore(t, storeConfig{MaxLen: p.maxLen}), p, true)
		})
	}
}

// TestReplayConcurrentAppender: Replay starts while another goroutine keeps
// appending; the client must end up with exactly the stream.
func TestReplayConcurrentAppender(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name string
		f    factory
	}{{"memory", memoryFactory}, {"redis", redisFactory(t)}}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			st := s.f(t, storeConfig{})
			ctx := testCtx(t)
			floor := mustLast(t, st, "u")
			const total = 1500
			started := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				for i := range total {
					if i == 200 {
						close(started)
					}
					if _, err := st.Append(ctx, []string{"u"}, msgN(i)); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			<-started
			c := newCollector()
			stop, err := Replay(ctx, st, "u", floor, 50, func(m Message) error { c.fn(m, nil); return nil }, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			c.waitN(t, total)
			time.Sleep(50 * time.Millisecond)
			got, _ := c.snapshot()
			stored, err := readAll(t, st, "u", floor)
			if err != nil {
				t.Fatal(err)
			}
			if len(stored) != total || !slices.Equal(ids(got), ids(stored)) {
				t.Fatalf("replayed %d messages, stream has %d; sequences differ", len(got), len(stored))
			}
		})
	}
}

func TestReplayErrors(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name  string
		f     factory
		async bool
	}{{"memory", memoryFactory, false}, {"redis", redisFactory(t), true}}
	errSend := errors.New("socket closed")
	settle := func(async bool) {
		if async {
			time.Sleep(150 * time.Millisecond)
		}
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			t.Run("expired", func(t *testing.T) {
				// Entries leave by age: the floor is older than the retention.
				st := s.f(t, storeConfig{Retention: 100 * time.Millisecond})
				floor := mustLast(t, st, "u")
				for i := range 5 {
					mustAppend(t, st, []string{"u"}, msgN(i))
				}
				time.Sleep(150 * time.Millisecond)
				n := 0
				for _, off := range []string{floor, "0-0"} {
					_, err := Replay(testCtx(t), st, "u", off, 10, func(Message) error { n++; return nil }, nil)
					if !errors.Is(err, ErrOffsetExpired) || n != 0 {
						t.Fatalf("Replay(%s) = %v after %d sends; want ErrOffsetExpired and nothing sent", off, err, n)
					}
				}
				if _, err := Replay(testCtx(t), st, "u", "bad", 10, func(Message) error { return nil }, nil); !errors.Is(err, ErrInvalidOffset) {
					t.Fatalf("invalid offset: %v", err)
				}
			})
			t.Run("send error in backlog", func(t *testing.T) {
				st := s.f(t, storeConfig{})
				floor := mustLast(t, st, "u")
				mustAppend(t, st, []string{"u"}, msgN(0))
				mustAppend(t, st, []string{"u"}, msgN(1))
				n := 0
				_, err := Replay(testCtx(t), st, "u", floor, 10, func(Message) error { n++; return errSend }, nil)
				if !errors.Is(err, errSend) || n != 1 {
					t.Fatalf("Replay = %v after %d sends; want the send error after 1", err, n)
				}
			})
			t.Run("send error live", func(t *testing.T) {
				st := s.f(t, storeConfig{})
				var mu sync.Mutex
				n, ends := 0, []error{}
				stop, err := Replay(testCtx(t), st, "u", mustLast(t, st, "u"), 10,
					func(Message) error { mu.Lock(); defer mu.Unlock(); n++; return errSend },
					func(err error) { mu.Lock(); defer mu.Unlock(); ends = append(ends, err) })
				if err != nil {
					t.Fatal(err)
				}
				defer stop()
				mustAppend(t, st, []string{"u"}, msgN(0))
				mustAppend(t, st, []string{"u"}, msgN(1))
				deadline := time.Now().Add(10 * time.Second)
				for {
					mu.Lock()
					done := len(ends) > 0
					mu.Unlock()
					if done || time.Now().After(deadline) {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				settle(s.async)
				mu.Lock()
				defer mu.Unlock()
				if n != 1 || len(ends) != 1 || !errors.Is(ends[0], errSend) {
					t.Fatalf("sends %d, onEnd %v; want 1 send and onEnd(send error) once", n, ends)
				}
			})
			t.Run("stop from send and ctx end", func(t *testing.T) {
				st := s.f(t, storeConfig{})
				var n atomic.Int32
				var stop func()
				var once sync.Once
				ready := make(chan struct{})
				stop, err := Replay(testCtx(t), st, "u", mustLast(t, st, "u"), 10, func(Message) error {
					n.Add(1)
					<-ready
					stop()
					return nil
				}, func(err error) { t.Errorf("onEnd(%v) after stop", err) })
				if err != nil {
					t.Fatal(err)
				}
				once.Do(func() { close(ready) })
				mustAppend(t, st, []string{"u"}, msgN(0))
				for n.Load() == 0 {
					time.Sleep(5 * time.Millisecond)
				}
				mustAppend(t, st, []string{"u"}, msgN(1))
				settle(s.async)
				if n.Load() != 1 {
					t.Fatalf("%d sends after stop from send", n.Load())
				}

				ctx, cancel := context.WithCancel(testCtx(t))
				var m atomic.Int32
				if _, err := Replay(ctx, st, "u", mustLast(t, st, "u"), 10,
					func(Message) error { m.Add(1); return nil }, nil); err != nil {
					t.Fatal(err)
				}
				cancel()
				time.Sleep(20 * time.Millisecond) // context.AfterFunc runs stop in its own goroutine
				mustAppend(t, st, []string{"u"}, msgN(2))
				settle(s.async)
				if m.Load() != 0 {
					t.Fatalf("%d sends after ctx ended", m.Load())
				}
			})
			t.Run("store closed", func(t *testing.T) {
				st := s.f(t, storeConfig{})
				ends := make(chan error, 2)
				if _, err := Replay(testCtx(t), st, "u", mustLast(t, st, "u"), 10,
					func(Message) error { return nil }, func(err error) { ends <- err }); err != nil {
					t.Fatal(err)
				}
				_ = st.Close()
				select {
				case err := <-ends:
					if !errors.Is(err, ErrClosed) {
						t.Fatalf("onEnd(%v), want ErrClosed", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("onEnd not called on Close")
				}
			})
		})
	}
}

// TestReplayBufferOverflow: more live messages arrive during the backlog
// than Replay buffers; it must fall back to the stream and stay exact.
func TestReplayBufferOverflow(t *testing.T) {
	t.Parallel()
	memoryHandoff(t, handoffPlan{pre: 10, pageSize: 5, beforeRead: []int{0}, afterRead: []int{maxReplayBuffer + 100, 0, 0, 0, 0, 0, 0, 0}, post: 3})
}
