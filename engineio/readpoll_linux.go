//go:build linux

package engineio

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
)

// pollSlot is a parked connection's place in the poller: its descriptor
// and a generation that tells its events from those of an earlier
// connection that had the same descriptor number.
type pollSlot struct {
	fd  int32
	gen uint32 // 0: never registered
}

// readPoller waits for bytes on a server's parked websockets, with one
// epoll instance and one goroutine, from the server's first websocket to
// its Shutdown. Each connection is registered once (EPOLL_CTL_ADD) and
// re-armed at every park (EPOLL_CTL_MOD, one-shot, so an event wakes it
// once). A descriptor leaves the epoll set by itself when the connection
// closes; the poller's slot for it is cleared when reading ends, and an
// event that still names an old generation is ignored. Descriptors are
// only touched through RawConn.Control, which fails once the connection
// is closed, so a re-arm never reaches a descriptor number that was
// closed and handed to another connection.
type readPoller struct {
	epfd int
	wake [2]int // a pipe: a byte written to wake[1] ends run
	done chan struct{}
	gens atomic.Uint32

	mu    sync.RWMutex
	slots []*readPark // by descriptor
}

// newReadPoller starts a poller, or returns nil where epoll cannot be used
// (reads then wait on goroutines, as everywhere else).
func newReadPoller() *readPoller {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	r := &readPoller{epfd: epfd, done: make(chan struct{})}
	if err := syscall.Pipe2(r.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		_ = syscall.Close(epfd)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: -1}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, r.wake[0], &ev); err != nil {
		r.closeFDs()
		return nil
	}
	go r.run()
	return r
}

func (r *readPoller) closeFDs() {
	_ = syscall.Close(r.wake[0])
	_ = syscall.Close(r.wake[1])
	_ = syscall.Close(r.epfd)
}

// stop ends the poller once no connection is parked in it.
func (r *readPoller) stop() {
	if r == nil {
		return
	}
	_, _ = syscall.Write(r.wake[1], []byte{0})
	<-r.done
}

// arm registers p's descriptor for one wake-up when it is readable.
func (r *readPoller) arm(p *readPark) error {
	var err error
	cerr := p.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT}
		if p.slot.gen != 0 {
			ev.Fd, ev.Pad = p.slot.fd, int32(p.slot.gen)
			err = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
			return
		}
		gen := r.gens.Add(1)
		if gen == 0 {
			gen = r.gens.Add(1)
		}
		p.slot = pollSlot{fd: int32(fd), gen: gen}
		r.mu.Lock()
		for len(r.slots) <= int(fd) {
			r.slots = append(r.slots, nil)
		}
		r.slots[fd] = p
		r.mu.Unlock()
		ev.Fd, ev.Pad = p.slot.fd, int32(gen)
		err = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// forget clears p's slot, so the poller no longer holds p.
func (r *readPoller) forget(p *readPark) {
	if p.slot.gen == 0 {
		return
	}
	r.mu.Lock()
	if int(p.slot.fd) < len(r.slots) && r.slots[p.slot.fd] == p {
		r.slots[p.slot.fd] = nil
	}
	r.mu.Unlock()
}

func (r *readPoller) run() {
	defer close(r.done)
	defer r.closeFDs()
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(r.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			panic("engineio: epoll_wait: " + err.Error())
		}
		r.mu.RLock()
		for i := range n {
			ev := &events[i]
			if ev.Fd < 0 {
				r.mu.RUnlock()
				return // stop
			}
			if int(ev.Fd) >= len(r.slots) {
				continue
			}
			if p := r.slots[ev.Fd]; p != nil && p.slot.gen == uint32(ev.Pad) {
				p.wake()
			}
		}
		r.mu.RUnlock()
	}
}
