package adapter_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/roomcast/roomcast/adapter"
)

// fakeSocket records what it is handed: a run (DeliverRun) or single
// messages (Deliver), as the labels of the messages (their Log field).
type fakeSocket struct {
	id   string
	runs bool // is a RunSocket
	got  []string
	sent []int // sizes of the hand-offs
}

func (s *fakeSocket) ID() string { return s.id }
func (s *fakeSocket) Deliver(m *adapter.Message, _ bool) bool {
	s.got, s.sent = append(s.got, m.Log), append(s.sent, 1)
	return true
}
func (s *fakeSocket) DeliverWithAck(m *adapter.Message, _ func([]any)) bool {
	return s.Deliver(m, false)
}
func (s *fakeSocket) Info() adapter.SocketInfo { return adapter.SocketInfo{ID: s.id} }
func (s *fakeSocket) Disconnect(bool)          {}

type fakeRunSocket struct{ *fakeSocket }

func (s fakeRunSocket) DeliverRun(msgs []*adapter.Message) bool {
	for _, m := range msgs {
		s.got = append(s.got, m.Log)
	}
	s.sent = append(s.sent, len(msgs))
	return true
}

// DeliverLocalRun hands each socket of the rooms the run's messages that
// do not except it, in order, in one DeliverRun when it can take one; an
// exception may be a room of many sockets.
func TestDeliverLocalRun(t *testing.T) {
	a := adapter.NewMemory(nil, adapter.MemoryConfig{})
	var socks []*fakeSocket
	for i := range 12 {
		s := &fakeSocket{id: "s" + strconv.Itoa(i), runs: i%2 == 0}
		socks = append(socks, s)
		var as adapter.Socket = s
		if s.runs {
			as = fakeRunSocket{s}
		}
		rooms := []string{s.id, "room"}
		if i >= 2 {
			rooms = append(rooms, "big") // 10 members: more than a short list
		}
		if err := a.AddAll(as, rooms...); err != nil {
			t.Fatal(err)
		}
	}
	var msgs []*adapter.Message
	for i := range 5 {
		msgs = append(msgs, &adapter.Message{Log: strconv.Itoa(i)})
	}
	except := [][]string{{"s0"}, {"s1"}, nil, {"big"}} // the fifth: none
	n := a.DeliverLocalRun(msgs, []string{"room"}, except)
	if want := []int{11, 11, 12, 2, 12}; !slices.Equal(n, want) {
		t.Fatalf("counts %v, want %v", n, want)
	}
	for i, s := range socks {
		var want []string
		for j, m := range msgs {
			if j < len(except) && slices.ContainsFunc(except[j], func(r string) bool { return r == s.id || (r == "big" && i >= 2) }) {
				continue
			}
			want = append(want, m.Log)
		}
		if !slices.Equal(s.got, want) {
			t.Fatalf("socket %s got %v, want %v", s.id, s.got, want)
		}
		if s.runs && len(s.sent) != 1 {
			t.Fatalf("run socket %s was handed %v, want one hand-off", s.id, s.sent)
		}
		if !s.runs && fmt.Sprint(s.sent) != fmt.Sprint(slices.Repeat([]int{1}, len(want))) {
			t.Fatalf("socket %s was handed %v, want one message at a time", s.id, s.sent)
		}
	}
}
