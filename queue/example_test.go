package queue_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/roomcast/roomcast/queue"
)

// A client that reconnects with the offset of the last message it got is
// sent what it missed, then live messages, with no gap and no duplicate.
func ExampleReplay() {
	ctx := context.Background()
	st, _ := queue.NewMemory(queue.MemoryConfig{})
	defer st.Close()

	offset, _ := st.Last(ctx, "alice") // a fresh session's offset
	for _, text := range []string{"one", "two"} {
		_, _ = st.Append(ctx, []string{"alice"}, queue.Message{
			Namespace: "/", Event: "chat", Data: []byte(`["` + text + `"]`)})
	}

	stop, err := queue.Replay(ctx, st, "alice", offset, 100, func(m queue.Message) error {
		fmt.Printf("%s %s\n", m.Event, m.Data)
		return nil
	}, nil)
	if err != nil {
		fmt.Println("not recovered:", err)
		return
	}
	defer stop()
	_, _ = st.Append(ctx, []string{"alice"}, queue.Message{Namespace: "/", Event: "chat", Data: []byte(`["three"]`)})

	// An offset from before the retention cannot be recovered.
	_, err = queue.Replay(ctx, st, "alice", "0-0", 100, func(queue.Message) error { return nil }, nil)
	fmt.Println("recovered:", !errors.Is(err, queue.ErrOffsetExpired))
	// Output:
	// chat ["one"]
	// chat ["two"]
	// chat ["three"]
	// recovered: false
}
