package redisadapter

import (
	"context"
	"sync"
	"time"

	"github.com/roomcast/roomcast/adapter"
)

// pending is a request this node sent to the others and is waiting on: the
// answers of a fetchSockets or a serverSideEmitWithAck, the confirmations
// of a join or leave, or the client counts and acknowledgements of a
// broadcast with acks (acks).
type pending struct {
	acks *adapter.Collector // broadcast with acks

	mu      sync.Mutex
	want    int // answers expected
	got     int
	sockets []adapter.SocketInfo
	answers [][]any
	err     error         // the first node's failure (join, leave)
	done    chan struct{} // closed when got reaches want
}

func newPending(want int) *pending {
	p := &pending{want: want, done: make(chan struct{})}
	if want <= 0 {
		close(p.done)
	}
	return p
}

// answer records one node's answer: its sockets (fetchSockets) or its
// acknowledgement arguments (serverSideEmitWithAck).
func (p *pending) answer(sockets []adapter.SocketInfo, args []any, isAnswer bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.got >= p.want {
		return
	}
	p.got++
	p.sockets = append(p.sockets, sockets...)
	if isAnswer {
		p.answers = append(p.answers, args)
	}
	if p.got == p.want {
		close(p.done)
	}
}

// confirm records one node's confirmation of a join or leave; err is its
// failure to store the change, nil when it did.
func (p *pending) confirm(err error) {
	p.mu.Lock()
	if err != nil && p.err == nil && p.got < p.want {
		p.err = err
	}
	p.mu.Unlock()
	p.answer(nil, nil, false)
}

// failure returns the first failure a node answered with.
func (p *pending) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// count returns how many answers arrived and how many are expected.
func (p *pending) count() (got, want int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got, p.want
}

// wait returns once every answer arrived, or with ErrAckTimeout when ctx
// ends or timeout passes first.
func (p *pending) wait(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	case <-t.C:
	}
	return adapter.ErrAckTimeout
}

// result returns what arrived so far.
func (p *pending) result() ([]adapter.SocketInfo, [][]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sockets, p.answers
}

// pendingSet maps request ids to pending requests.
type pendingSet struct {
	mu sync.Mutex
	m  map[string]*pending
}

func (s *pendingSet) add(id string, p *pending) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]*pending)
	}
	s.m[id] = p
	s.mu.Unlock()
}

func (s *pendingSet) get(id string) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

func (s *pendingSet) del(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}
