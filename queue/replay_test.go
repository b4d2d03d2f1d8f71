package queue_test

import (
	"math/rand/v2"
	"testing"

	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/storetest"
)

func memoryHandoff(t testing.TB, p storetest.HandoffPlan) {
	t.Helper()
	st, err := queue.NewMemory(queue.MemoryConfig{MaxLen: p.MaxLen})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.RunHandoff(t, st, p, false)
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
		memoryHandoff(t, storetest.PlanFrom(b))
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
		memoryHandoff(t, storetest.PlanFrom(b))
	}
}

// TestReplayConcurrentAppender: Replay starts while another goroutine keeps
// appending; the client must end up with exactly the stream.
func TestReplayConcurrentAppender(t *testing.T) {
	t.Parallel()
	storetest.RunReplayConcurrentAppender(t, memoryFactory)
}

func TestReplayErrors(t *testing.T) {
	t.Parallel()
	storetest.RunReplayErrors(t, memoryFactory, false)
}

// TestReplayBufferOverflow: more live messages arrive during the backlog
// than Replay buffers; it must fall back to the stream and stay exact.
func TestReplayBufferOverflow(t *testing.T) {
	t.Parallel()
	memoryHandoff(t, storetest.HandoffPlan{Pre: 10, PageSize: 5, BeforeRead: []int{0},
		AfterRead: []int{queue.MaxReplayBuffer + 100, 0, 0, 0, 0, 0, 0, 0}, Post: 3})
}
