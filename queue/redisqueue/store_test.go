package redisqueue

import (
	"fmt"
	"testing"

	"github.com/roomcast/roomcast/queue/internal/storetest"
)

// The contract every Store implements and Replay's handoff, on a real
// redis-server (package queue runs them against Memory).

func TestRedisContract(t *testing.T) {
	t.Parallel()
	storetest.RunContract(t, redisFactory(t))
}

// TestReplayHandoffRedis plays scripted interleavings against a real Redis,
// where live deliveries arrive asynchronously on the pub/sub connection.
func TestReplayHandoffRedis(t *testing.T) {
	t.Parallel()
	newStore := redisFactory(t)
	plans := []storetest.HandoffPlan{
		{Pre: 5, PageSize: 2},
		{Pre: 0, PageSize: 3, BeforeRead: []int{3}, AfterRead: []int{2}, Post: 4},
		{Pre: 10, Skip: 4, PageSize: 3, BeforeRead: []int{1, 0, 2}, AfterRead: []int{2, 1}, Post: 3},
		{Pre: 7, Skip: 7, PageSize: 1, AfterRead: []int{4}, Post: 2},
		{Pre: 30, Skip: 5, PageSize: 4, BeforeRead: []int{2}, AfterRead: []int{3}, Post: 10},
		{Pre: 12, PageSize: 2, MaxLen: 6, BeforeRead: []int{4}, AfterRead: []int{4}},
		{Pre: 3, Skip: 1, PageSize: 100, AfterRead: []int{20}, Post: 20},
	}
	for i, p := range plans {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			storetest.RunHandoff(t, newStore(t, storetest.Config{MaxLen: p.MaxLen}), p, true)
		})
	}
}

// TestReplayConcurrentAppender: Replay starts while another goroutine keeps
// appending; the client must end up with exactly the stream.
func TestReplayConcurrentAppender(t *testing.T) {
	t.Parallel()
	storetest.RunReplayConcurrentAppender(t, redisFactory(t))
}

func TestReplayErrors(t *testing.T) {
	t.Parallel()
	storetest.RunReplayErrors(t, redisFactory(t), true)
}
