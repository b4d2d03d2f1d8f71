//go:build linux

package engineio

import (
	"errors"
	"os"
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
//
// The epoll instance is itself waited on through the runtime's network
// poller (an epoll descriptor is readable while events are ready), so the
// poller goroutine is woken by the scheduler like any network read rather
// than blocking a thread in epoll_wait and queueing for a processor each
// time it returns.
type readPoller struct {
	ep   *os.File // the epoll instance, non-blocking, in the runtime's poller
	raw  syscall.RawConn
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
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return nil
	}
	ep := os.NewFile(uintptr(epfd), "engineio-read-poller")
	raw, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil
	}
	r := &readPoller{ep: ep, raw: raw, done: make(chan struct{})}
	go r.run()
	return r
}

// stop ends the poller once no connection is parked in it.
func (r *readPoller) stop() {
	if r == nil {
		return
	}
	_ = r.ep.Close() // the waiting read fails
	<-r.done
}

// arm registers p's descriptor for one wake-up when it is readable. Both
// descriptors are used only through Control, so neither is touched after
// it was closed (a closed number may already belong to something else).
func (r *readPoller) arm(p *readPark) error {
	var err error
	cerr := p.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT}
		op := syscall.EPOLL_CTL_MOD
		if p.slot.gen == 0 {
			op = syscall.EPOLL_CTL_ADD
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
		}
		ev.Fd, ev.Pad = p.slot.fd, int32(p.slot.gen)
		if cerr := r.raw.Control(func(epfd uintptr) {
			err = syscall.EpollCtl(int(epfd), op, int(fd), &ev)
		}); cerr != nil {
			err = cerr
		}
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

// run takes ready events without blocking and waits in the runtime's
// poller when there are none, until stop closes the epoll instance.
func (r *readPoller) run() {
	defer close(r.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		err := r.raw.Read(func(fd uintptr) bool {
			for {
				n, err := syscall.EpollWait(int(fd), events, 0)
				if err != nil {
					return !errors.Is(err, syscall.EINTR) && !errors.Is(err, syscall.EAGAIN)
				}
				if n == 0 {
					return false // wait for the next event
				}
				r.dispatch(events[:n])
				if n < len(events) {
					return false
				}
			}
		})
		if err != nil {
			return // closed by stop
		}
	}
}

func (r *readPoller) dispatch(events []syscall.EpollEvent) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i := range events {
		ev := &events[i]
		if int(ev.Fd) >= len(r.slots) || ev.Fd < 0 {
			continue
		}
		if p := r.slots[ev.Fd]; p != nil && p.slot.gen == uint32(ev.Pad) {
			p.wake()
		}
	}
}
