package room

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
)

type sock string

func (s sock) ID() string { return string(s) }

func collect(x *Index[sock], rooms, except []string) []string {
	var out []string
	x.Each(rooms, except, func(s sock) { out = append(out, string(s)) })
	sort.Strings(out)
	return out
}

func TestEachSelection(t *testing.T) {
	t.Parallel()
	x := New[sock]()
	x.Join("a", "r1", "r2")
	x.Join("b", "r1")
	x.Join("c", "r2", "r3")
	x.Add("d")
	tests := []struct {
		name          string
		rooms, except []string
		want          []string
	}{
		{"all", nil, nil, []string{"a", "b", "c", "d"}},
		{"one room", []string{"r1"}, nil, []string{"a", "b"}},
		{"union without duplicates", []string{"r1", "r2"}, nil, []string{"a", "b", "c"}},
		{"except", []string{"r1", "r2"}, []string{"r3"}, []string{"a", "b"}},
		{"all except", nil, []string{"r1"}, []string{"c", "d"}},
		{"unknown room", []string{"nope"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := collect(x, tt.rooms, tt.except); !slices.Equal(got, tt.want) {
				t.Fatalf("Each(%v, %v) = %v, want %v", tt.rooms, tt.except, got, tt.want)
			}
		})
	}
}

func TestJoinLeaveReportsFirstAndLast(t *testing.T) {
	t.Parallel()
	x := New[sock]()
	if got := x.Join("a", "r"); !slices.Equal(got, []string{"r"}) {
		t.Fatalf("first join created %v", got)
	}
	if got := x.Join("b", "r"); len(got) != 0 {
		t.Fatalf("second join created %v", got)
	}
	if x.Leave("a", "r") {
		t.Fatal("room reported empty with b still in it")
	}
	if !x.Leave("b", "r") {
		t.Fatal("room not reported empty after last leave")
	}
	if x.RoomLen("r") != 0 || len(x.AllRooms()) != 0 {
		t.Fatal("empty room kept")
	}
	x.Join("c", "x", "y")
	emptied := x.Remove("c")
	sort.Strings(emptied)
	if !slices.Equal(emptied, []string{"x", "y"}) || x.Len() != 2 {
		t.Fatalf("Remove emptied %v, len %d", emptied, x.Len())
	}
	if _, ok := x.Get("c"); ok {
		t.Fatal("removed member still found")
	}
}

func TestConcurrentJoinLeaveEach(t *testing.T) {
	t.Parallel()
	x := New[sock]()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				s := sock(fmt.Sprintf("w%d-%d", w, i))
				x.Join(s, "hot", fmt.Sprintf("r%d", i%7))
				x.Each([]string{"hot"}, nil, func(sock) {})
				if i%2 == 0 {
					x.Remove(s)
				}
			}
		}()
	}
	wg.Wait()
	if got, want := x.RoomLen("hot"), 8*250; got != want {
		t.Fatalf("hot has %d members, want %d", got, want)
	}
}

func BenchmarkEachOneRoom(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			x := New[sock]()
			for i := 0; i < n; i++ {
				x.Join(sock(fmt.Sprint(i)), "room")
			}
			count := 0
			fn := func(sock) { count++ }
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				x.Each([]string{"room"}, nil, fn)
			}
		})
	}
}

// A room goes from one member (held inline) to many (a map) and back, and
// every query sees the same members either way.
func TestRoomOfOneAndOfMany(t *testing.T) {
	t.Parallel()
	x := New[sock]()
	x.Join("a", "r", "a")
	x.Join("a", "r") // again: nothing changes
	check := func(want ...string) {
		t.Helper()
		if got := collect(x, []string{"r"}, nil); !slices.Equal(got, want) {
			t.Fatalf("members %v, want %v", got, want)
		}
		if x.RoomLen("r") != len(want) {
			t.Fatalf("RoomLen %d, want %d", x.RoomLen("r"), len(want))
		}
		for _, m := range want {
			if !x.InRoom(m, "r") {
				t.Fatalf("%s not InRoom", m)
			}
		}
	}
	check("a")
	if got := collect(x, []string{"r"}, []string{"a"}); len(got) != 0 {
		t.Fatalf("except the only member gave %v", got)
	}
	x.Join("b", "r", "b")
	x.Join("c", "r")
	check("a", "b", "c")
	if got := collect(x, []string{"r", "a"}, []string{"b"}); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("two rooms except b gave %v", got)
	}
	x.Leave("a", "r")
	x.Leave("c", "r")
	check("b") // back to one member
	if x.Leave("c", "r") {
		t.Fatal("a non-member's leave emptied the room")
	}
	rooms := x.Rooms("a")
	if !slices.Equal(rooms, []string{"a"}) {
		t.Fatalf("a's rooms %v", rooms)
	}
	if !x.Leave("b", "r") || x.RoomLen("r") != 0 {
		t.Fatal("room not emptied by its last member")
	}
}
