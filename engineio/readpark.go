package engineio

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// An idle websocket has no goroutine of its own: between messages its
// read is parked in the server's read poller (readpoll_linux.go), which
// waits for bytes on every parked connection from one goroutine and
// starts a fresh read goroutine for a connection that has some. A blocked
// read would otherwise keep a goroutine and its stack (4–8 KB) per idle
// connection, the largest part of what one costs.
//
// The states of a websocket's read, in readPark.state:
//
//	parkReading: a goroutine reads (or is about to); it holds the session's
//	             count of readers
//	parkParked:  no goroutine; the poller holds the count and hands it to
//	             the goroutine it starts when bytes arrive
//	parkDone:    reading is over, the count was given back
//
// A read parks only when the websocket library's bufio.Reader (ours, made
// in Hijack) holds no unread bytes: those would never wake the poller. It
// does not park while the client is busy (its previous packet came less
// than parkQuiet before this one): a wake-up through the poller costs a
// system call and a goroutine hand-off more than a waiting read, which a
// client sending a stream of messages would pay for each; its reader
// waits instead, and parks after the first packet that follows a quiet
// spell (at the latest the pong of the next heartbeat).
//
// The check and the park run under readPark.mu, which the close sequence
// also holds while the library's Close reads the peer's close frame
// through that reader, so the two never touch it at once.

// parkQuiet is how long before a packet the previous one must have come
// for the read to park after it (at most half the ping interval, so that
// heartbeats alone never count as busy).
const parkQuiet = time.Second

const (
	parkReading int32 = iota
	parkParked
	parkDone
)

// readPark is what a websocket needs to park its read.
type readPark struct {
	poll *readPoller
	br   *bufio.Reader   // the library's reader
	raw  syscall.RawConn // the descriptor, used only through Control (never after close)

	mu    sync.Mutex
	state atomic.Int32
	last  time.Time // when the previous packet was read (by the reading goroutine only)

	// Set while mu is held, before the state becomes parkParked; read
	// by the poller after it moved the state back to parkReading.
	owner *Conn
	ws    *websocket.Conn
	slot  pollSlot // the poller's record of this connection
}

// newReadPark returns what parks reads from nc through br in poll, or nil
// when nc cannot be parked (not a plain socket: a TLS connection buffers
// bytes the descriptor does not show) or there is no poller.
func newReadPark(poll *readPoller, nc net.Conn, br *bufio.Reader) *readPark {
	if poll == nil {
		return nil
	}
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &readPark{poll: poll, br: br, raw: raw}
}

// park hands c's read of ws to the poller when nothing is buffered and the
// session is not closing. It reports whether it did: then the calling
// goroutine ends without giving back its count of c.readers.
func (p *readPark) park(c *Conn, ws *websocket.Conn) bool {
	if p == nil {
		return false
	}
	now := time.Now()
	busy := now.Sub(p.last) < min(parkQuiet, c.srv.cfg.PingInterval/2)
	p.last = now
	if busy {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.br.Buffered() > 0 || c.isClosing() {
		return false
	}
	p.owner, p.ws = c, ws
	p.state.Store(parkParked)
	if err := p.poll.arm(p); err != nil {
		p.state.Store(parkReading)
		return false
	}
	return true
}

// wake starts a read goroutine for a parked connection. Called by the
// poller when its descriptor is readable (or closed).
func (p *readPark) wake() {
	if p.state.CompareAndSwap(parkParked, parkReading) {
		go p.owner.reader(p.ws, p)
	}
}

// release gives back a parked read's count of c.readers: called by the
// close sequence once the websocket is closed, so no poller wake-up can
// follow for it. A read that is not parked gives back its count itself.
func (p *readPark) release(c *Conn) {
	if p != nil && p.state.CompareAndSwap(parkParked, parkDone) {
		p.poll.forget(p)
		c.readers.Done()
	}
}

// end records that reading is over for good.
func (p *readPark) end() {
	if p != nil {
		p.state.Store(parkDone)
		p.poll.forget(p)
	}
}

// closeLocked runs fn (the library's Close or CloseNow) so that no read
// parks while it runs.
func (p *readPark) closeLocked(fn func()) {
	if p == nil {
		fn()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fn()
}

// isClosing reports whether a close of the session was requested.
func (c *Conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}
