package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/queue"
)

// HandoffPlan is one interleaving of appends around a Replay: before the
// replay, around each backlog page read, inside sends made while the
// backlog is being handed over, and after Replay returned.
type HandoffPlan struct {
	Pre        int   // appends before Replay
	Skip       int   // the offset is the ID of the Skip-th Pre append (0: a floor before all)
	PageSize   int   // Replay's page size
	MaxLen     int64 // stream bound (0: default), small values make trimming race the replay
	BeforeRead []int // appends before the i-th page read (cyclic, first hookCalls reads)
	AfterRead  []int // appends after the i-th page read returned (cyclic, first hookCalls reads)
	DuringSend []int // appends inside the i-th send before Replay returned (cyclic, first hookCalls sends; Memory only)
	Post       int   // appends after Replay returned
}

func (p HandoffPlan) String() string {
	return fmt.Sprintf("pre=%d skip=%d page=%d maxlen=%d before=%v after=%v send=%v post=%d",
		p.Pre, p.Skip, p.PageSize, p.MaxLen, p.BeforeRead, p.AfterRead, p.DuringSend, p.Post)
}

// PlanFrom decodes a fuzz input.
func PlanFrom(b []byte) HandoffPlan {
	next := func() int {
		if len(b) == 0 {
			return 0
		}
		v := int(b[0])
		b = b[1:]
		return v
	}
	var p HandoffPlan
	p.Pre = next() % 16
	p.Skip = next() % (p.Pre + 1)
	p.PageSize = next()%6 + 1
	p.MaxLen = []int64{0, 0, 0, 6, 20}[next()%5]
	list := func() []int {
		n := next() % 5
		out := make([]int, n)
		for i := range out {
			out[i] = next() % 5
		}
		return out
	}
	p.BeforeRead, p.AfterRead, p.DuringSend = list(), list(), list()
	p.Post = next() % 6
	return p
}

// hookStore runs callbacks around the page reads of a Replay.
type hookStore struct {
	queue.Store
	before, after func(call int)
	calls         int
}

func (h *hookStore) Read(ctx context.Context, user, after string, limit int) ([]queue.Message, error) {
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

// RunHandoff plays p against st and checks the replay property: the
// messages sent are exactly the stream after the offset, in order, once
// each — or, when the offset expired, a prefix of it (nothing at all when
// it had expired before Replay started).
func RunHandoff(t testing.TB, st queue.Store, p HandoffPlan, async bool) {
	t.Helper()
	ctx := Ctx(t)
	const user = "u"
	floor := MustLast(t, st, user)
	var appended []string // every appended ID, in stream order (one appender)
	app := func(n int) {
		for range n {
			id, err := st.Append(ctx, []string{user}, MsgN(len(appended)))
			if errors.Is(err, queue.ErrQueueFull) {
				return // a small MaxLen: the stream refuses, and keeps its history
			}
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
			appended = append(appended, id[0])
		}
	}
	app(p.Pre)
	after := floor
	if p.Skip > 0 {
		after = appended[min(p.Skip, len(appended))-1] // a full stream took fewer
	}
	_, preErr := st.Read(ctx, user, after, 1)
	expiredBefore := errors.Is(preErr, queue.ErrOffsetExpired)

	var (
		mu        sync.Mutex
		sent      []queue.Message
		sends     int
		returned  atomic.Bool
		endErrs   []error
		allowSync = !async // appends from send only where delivery is synchronous
	)
	hs := &hookStore{Store: st,
		before: func(i int) { app(cyclic(p.BeforeRead, i)) },
		after:  func(i int) { app(cyclic(p.AfterRead, i)) },
	}
	send := func(m queue.Message) error {
		mu.Lock()
		sent = append(sent, m)
		i := sends
		sends++
		mu.Unlock()
		if allowSync && !returned.Load() {
			app(cyclic(p.DuringSend, i))
		}
		return nil
	}
	onEnd := func(err error) {
		mu.Lock()
		endErrs = append(endErrs, err)
		mu.Unlock()
	}
	stop, err := queue.Replay(ctx, hs, user, after, p.PageSize, send, onEnd)
	returned.Store(true)
	if err == nil {
		app(p.Post)
	}
	var want []string
	for _, id := range appended {
		if c, _ := queue.CompareOffsets(id, after); c > 0 {
			want = append(want, id)
		}
	}
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return IDs(sent)
	}
	switch {
	case err == nil:
		if expiredBefore {
			t.Fatalf("%v: queue.Replay succeeded from an offset that had expired", p)
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
	case errors.Is(err, queue.ErrOffsetExpired):
		g := got()
		if expiredBefore && len(g) != 0 {
			t.Fatalf("%v: offset had expired, yet %d messages were sent", p, len(g))
		}
		if len(g) > len(want) || !slices.Equal(g, want[:len(g)]) {
			t.Fatalf("%v: expired replay sent %v, not a prefix of %v", p, g, want)
		}
		if p.MaxLen == 0 && !expiredBefore {
			t.Fatalf("%v: expired without trimming: %v (sent %d, want %d)", p, err, len(g), len(want))
		}
	default:
		t.Fatalf("%v: Replay: %v", p, err)
	}
}

// RunReplayConcurrentAppender: Replay starts while another goroutine keeps
// appending; the client must end up with exactly the stream.
func RunReplayConcurrentAppender(t *testing.T, newStore Factory) {
	st := newStore(t, Config{})
	ctx := Ctx(t)
	floor := MustLast(t, st, "u")
	const total = 1500
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := range total {
			if i == 200 {
				close(started)
			}
			if _, err := st.Append(ctx, []string{"u"}, MsgN(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	<-started
	c := NewCollector()
	stop, err := queue.Replay(ctx, st, "u", floor, 50, func(m queue.Message) error { c.Fn(m, nil); return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.WaitN(t, total)
	time.Sleep(50 * time.Millisecond)
	got, _ := c.Snapshot()
	stored, err := ReadAll(t, st, "u", floor)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != total || !slices.Equal(IDs(got), IDs(stored)) {
		t.Fatalf("replayed %d messages, stream has %d; sequences differ", len(got), len(stored))
	}
}

// RunReplayErrors checks how Replay ends: an expired or invalid offset, an
// error from send (backlog and live), stop (from send, or by ctx) and the
// Store's Close. async tells that the Store delivers live messages on its
// own goroutine, which the checks wait for.
func RunReplayErrors(t *testing.T, newStore Factory, async bool) {
	errSend := errors.New("socket closed")
	settle := func(async bool) {
		if async {
			time.Sleep(150 * time.Millisecond)
		}
	}
	t.Run("expired", func(t *testing.T) {
		// Entries leave by age: the floor is older than the retention.
		st := newStore(t, Config{Retention: 100 * time.Millisecond})
		floor := MustLast(t, st, "u")
		for i := range 5 {
			MustAppend(t, st, []string{"u"}, MsgN(i))
		}
		time.Sleep(150 * time.Millisecond)
		n := 0
		for _, off := range []string{floor, "0-0"} {
			_, err := queue.Replay(Ctx(t), st, "u", off, 10, func(queue.Message) error { n++; return nil }, nil)
			if !errors.Is(err, queue.ErrOffsetExpired) || n != 0 {
				t.Fatalf("queue.Replay(%s) = %v after %d sends; want queue.ErrOffsetExpired and nothing sent", off, err, n)
			}
		}
		if _, err := queue.Replay(Ctx(t), st, "u", "bad", 10, func(queue.Message) error { return nil }, nil); !errors.Is(err, queue.ErrInvalidOffset) {
			t.Fatalf("invalid offset: %v", err)
		}
	})
	t.Run("send error in backlog", func(t *testing.T) {
		st := newStore(t, Config{})
		floor := MustLast(t, st, "u")
		MustAppend(t, st, []string{"u"}, MsgN(0))
		MustAppend(t, st, []string{"u"}, MsgN(1))
		n := 0
		_, err := queue.Replay(Ctx(t), st, "u", floor, 10, func(queue.Message) error { n++; return errSend }, nil)
		if !errors.Is(err, errSend) || n != 1 {
			t.Fatalf("queue.Replay = %v after %d sends; want the send error after 1", err, n)
		}
	})
	t.Run("send error live", func(t *testing.T) {
		st := newStore(t, Config{})
		var mu sync.Mutex
		n, ends := 0, []error{}
		stop, err := queue.Replay(Ctx(t), st, "u", MustLast(t, st, "u"), 10,
			func(queue.Message) error { mu.Lock(); defer mu.Unlock(); n++; return errSend },
			func(err error) { mu.Lock(); defer mu.Unlock(); ends = append(ends, err) })
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		MustAppend(t, st, []string{"u"}, MsgN(0))
		MustAppend(t, st, []string{"u"}, MsgN(1))
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
		settle(async)
		mu.Lock()
		defer mu.Unlock()
		if n != 1 || len(ends) != 1 || !errors.Is(ends[0], errSend) {
			t.Fatalf("sends %d, onEnd %v; want 1 send and onEnd(send error) once", n, ends)
		}
	})
	t.Run("stop from send and ctx end", func(t *testing.T) {
		st := newStore(t, Config{})
		var n atomic.Int32
		var stop func()
		var once sync.Once
		ready := make(chan struct{})
		stop, err := queue.Replay(Ctx(t), st, "u", MustLast(t, st, "u"), 10, func(queue.Message) error {
			n.Add(1)
			<-ready
			stop()
			return nil
		}, func(err error) { t.Errorf("onEnd(%v) after stop", err) })
		if err != nil {
			t.Fatal(err)
		}
		once.Do(func() { close(ready) })
		MustAppend(t, st, []string{"u"}, MsgN(0))
		for n.Load() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		MustAppend(t, st, []string{"u"}, MsgN(1))
		settle(async)
		if n.Load() != 1 {
			t.Fatalf("%d sends after stop from send", n.Load())
		}

		ctx, cancel := context.WithCancel(Ctx(t))
		var m atomic.Int32
		if _, err := queue.Replay(ctx, st, "u", MustLast(t, st, "u"), 10,
			func(queue.Message) error { m.Add(1); return nil }, nil); err != nil {
			t.Fatal(err)
		}
		cancel()
		time.Sleep(20 * time.Millisecond) // context.AfterFunc runs stop in its own goroutine
		MustAppend(t, st, []string{"u"}, MsgN(2))
		settle(async)
		if m.Load() != 0 {
			t.Fatalf("%d sends after ctx ended", m.Load())
		}
	})
	t.Run("store closed", func(t *testing.T) {
		st := newStore(t, Config{})
		ends := make(chan error, 2)
		if _, err := queue.Replay(Ctx(t), st, "u", MustLast(t, st, "u"), 10,
			func(queue.Message) error { return nil }, func(err error) { ends <- err }); err != nil {
			t.Fatal(err)
		}
		_ = st.Close()
		select {
		case err := <-ends:
			if !errors.Is(err, queue.ErrClosed) {
				t.Fatalf("onEnd(%v), want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("onEnd not called on Close")
		}
	})
}
