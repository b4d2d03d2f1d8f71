package presence_test

import (
	"context"
	"fmt"

	"github.com/roomcast/roomcast/presence"
)

// A room's members at the user level: a user's second socket changes no
// membership, its last one leaving does.
func ExampleMemory() {
	ctx := context.Background()
	st := presence.NewMemory(presence.MemoryConfig{Node: "n1"})
	phone := presence.Socket{Namespace: "/", ID: "s1", User: "alice", Info: []byte(`{"name":"Alice"}`)}
	laptop := presence.Socket{Namespace: "/", ID: "s2", User: "alice"}
	show := func(ev []presence.Event, _ error) {
		for _, e := range ev {
			fmt.Println(e.Type, e.User, e.Members)
		}
	}
	show(st.Join(ctx, phone, "lobby"))
	show(st.Join(ctx, laptop, "lobby"))
	p, _ := st.Members(ctx, "/", "lobby", "", 10)
	fmt.Println(p.Users, p.Sockets, p.Members[0].User, p.Members[0].Sockets, string(p.Members[0].Info))
	show(st.Leave(ctx, phone, "lobby"))
	show(st.Leave(ctx, laptop, "lobby"))
	// Output:
	// occupied  1
	// join alice 1
	// 1 2 alice 2 {"name":"Alice"}
	// leave alice 0
	// vacated  0
}
