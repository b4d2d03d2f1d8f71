package engineio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/roomcast/roomcast/internal/clock"
)

// Handlers are a session's callbacks, installed by Config.OnConnection with
// Conn.SetHandlers. A nil field is skipped.
type Handlers struct {
	// OnMessage receives each incoming message packet (type 4) in order, one
	// at a time per Conn (never concurrently for the same Conn). data is
	// owned by the callee (never reused).
	OnMessage func(data []byte, binary bool)
	// OnUpgrade is called after the transport changed (polling -> websocket).
	OnUpgrade func(transport string)
	// OnClose is called exactly once when the session ends, with one of
	// the engine's Reasons (ReasonTransportClose ... ReasonSlowConsumer) and
	// err if any. It runs on the session's goroutine (Conn.run), after the
	// transport is closed and its readers returned. No OnMessage runs
	// concurrently with or after it.
	OnClose func(reason Reason, err error)
	// OnHandover, when set, lets the session move to another node
	// (Conn.Handover): it is called with the client paused, and must call
	// stop, which ends the session's sending (every later Send fails)
	// and keeps what was queued for the new node, then return what the
	// layer above needs to go on there. OnClose follows with
	// ReasonHandover. An error before stop leaves the session as it was.
	OnHandover func(ctx context.Context, stop func() error) ([]byte, error)
}

type transportKind uint8

const (
	kindPolling transportKind = iota
	kindWebSocket
)

func (k transportKind) String() string {
	if k == kindWebSocket {
		return transportWebSocket
	}
	return transportPolling
}

type connState uint8

const (
	stateOpen    connState = iota
	stateClosing           // close requested; the run goroutine tears down
	stateClosed            // torn down; OnClose called or being called
)

// closeMode says what happens to the queue and the transport on close.
type closeMode uint8

const (
	modeAbort closeMode = iota // drop the queue; drop the transport at once
	modeClose                  // drop the queue; close the transport in order
	modeFlush                  // deliver the queue (bounded), then close in order
)

const (
	// closeFlushTimeout bounds Close's flush and every orderly close.
	closeFlushTimeout = time.Second
	// probeNoopDelay is how long a GET that arrives after an upgrade probe
	// waits before it is answered with a noop (engine.io checks every
	// 100ms), so a "5" racing with it wins and the GET is refused instead.
	probeNoopDelay = 50 * time.Millisecond
)

// Conn is one Engine.IO session. Its methods are safe for concurrent use.
type Conn struct {
	srv      *Server
	id       string
	req      *http.Request
	handlers atomic.Pointer[Handlers]

	// deliverMu serializes the calls of OnMessage, OnUpgrade and OnClose.
	deliverMu sync.Mutex

	// mu guards everything below it. Never held during I/O or callbacks.
	mu         sync.Mutex
	state      connState
	transport  transportKind
	queue      []Frame   // frames waiting for the transport
	spare      []Frame   // recycled backing array for queue
	joined     *[]byte   // flushWebSocket's pooled buffer for frames with a Tail (the writer only)
	wdeadline  time.Time // the websocket's write deadline; zero when cleared (the writer only)
	queueBytes int
	drained    chan struct{} // closed when the queue is taken, if WaitBelow waits

	ws      *websocket.Conn // current websocket transport
	netConn net.Conn        // ws's connection, closed to force it down
	cork    *corkConn       // ws's writes, batched per queue flush

	upgrading bool            // a probe websocket is attached
	probed    bool            // probe answered: the client is pausing polling
	probeGen  uint32          // counts answered probes
	probeWS   *websocket.Conn // the probe websocket until upgrade completes
	probeNet  net.Conn
	probeCork *corkConn

	handover *time.Timer // a handover began (BeginHandover); ends it unless taken
	adopted  []byte      // the layer above's state, for a session handed over here

	created      time.Time   // the heartbeat's origin
	hbEntry      clock.Entry // the session's place on the server's heartbeat clock
	hbStarted    bool        // start ran: the heartbeat is on the clock
	nextPing     time.Time   // when the next ping is due
	pongDeadline time.Time   // while a ping awaits its pong; zero otherwise

	pollActive bool // a GET is pending
	postActive bool // a POST is being read
	finalSent  bool // the closing session's last GET response was taken

	reason      Reason
	closeErr    error
	mode        closeMode
	flushCtx    context.Context    // bounds flushing/closing (non-abort modes)
	flushCancel context.CancelFunc // cancels flushCtx when we created it
	stopForce   func() bool        // unregisters the force-close hook on flushCtx
	finalDone   chan struct{}      // closed when a lingering polling session's last GET was answered

	// writing is set while a goroutine owns writing the queue to the
	// websocket (writeLoop, or teardown at the end): a quiet connection
	// has no writer goroutine.
	writing     bool
	wake        chan struct{} // wakes the writer; 1-buffered, made with the first writer
	writerDone  chan struct{} // closed when writing ends, if teardown waits
	writerEnded time.Time     // when the last writer ended

	pollWake chan struct{} // wakes the pending GET (polling); 1-buffered; nil on a websocket-only session
	closing  chan struct{} // closed when close is requested
	done     chan struct{} // closed when the session has ended; made by the first Done
	ended    bool          // the session has ended (done, if made, is closed)
	readers  sync.WaitGroup
}

func newConn(s *Server, r *http.Request, kind transportKind) *Conn {
	c := &Conn{
		srv:       s,
		created:   time.Now(),
		id:        newSID(),
		req:       cloneRequest(r),
		transport: kind,
		closing:   make(chan struct{}),
	}
	if kind == kindPolling {
		c.pollWake = make(chan struct{}, 1)
	}
	open := s.openFrame(c.id, kind)
	c.queue = append(make([]Frame, 0, 4), open)
	c.queueBytes = len(open.Data)
	return c
}

// cloneRequest keeps what Conn.Request promises: URL, Header, RemoteAddr and
// the request's context values, without its body or cancellation. The copy
// is shallow: net/http makes a request's URL and Header for that request
// alone and never touches them after its handler returned, so the session
// shares them rather than keeping a second copy of every header.
func cloneRequest(r *http.Request) *http.Request {
	rc := r.WithContext(context.WithoutCancel(r.Context()))
	rc.Body = http.NoBody
	rc.GetBody = nil
	return rc
}

// SetHandlers installs the session's callbacks. Call it from
// Config.OnConnection; calling it later replaces them for what follows.
func (c *Conn) SetHandlers(h Handlers) {
	c.handlers.Store(&h)
}

// ID returns the Engine.IO session id (sid).
func (c *Conn) ID() string { return c.id }

// Request returns the handshake request: URL (query), Header, RemoteAddr.
// Its body is not readable.
func (c *Conn) Request() *http.Request { return c.req }

// Transport returns the current transport, "polling" or "websocket".
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transport.String()
}

// Done returns a channel closed when the session has ended (after OnClose
// returned).
func (c *Conn) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.ended {
			close(c.done)
		}
	}
	return c.done
}

// Send enqueues frames atomically (all or none) without blocking. It returns
// ErrClosed if the conn is closed. If the queue would exceed MaxQueueBytes
// the conn is closed with reason "slow consumer" and ErrSlowConsumer
// returned. It does not allocate in steady state.
func (c *Conn) Send(frames ...Frame) error {
	n := 0
	for i := range frames {
		n += frames[i].size()
	}
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.queueBytes+n > c.srv.cfg.MaxQueueBytes {
		c.mu.Unlock()
		c.closeWith(ReasonSlowConsumer, ErrSlowConsumer, modeAbort, nil)
		return ErrSlowConsumer
	}
	if c.queue == nil {
		c.queue = getFrames()
	}
	c.queue = append(c.queue, frames...)
	c.queueBytes += n
	c.notifyLocked()
	return nil
}

// Close flushes what is queued (bounded, about a second) then closes the
// session with reason "forced close". It does not wait: watch Done.
func (c *Conn) Close() { c.CloseReason(ReasonForcedClose) }

// CloseReason is Close reporting reason to OnClose instead of "forced
// close" (the layer above knows why it closes: "parse error", ...).
func (c *Conn) CloseReason(reason Reason) {
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
	if !c.closeWithCancel(reason, nil, modeFlush, ctx, cancel) {
		cancel()
	}
}

// signal does a non-blocking send on a 1-buffered wake-up channel.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// notifyLocked tells whoever drains the queue on the current transport
// that it grew, and unlocks c.mu: on websocket it wakes the writer
// goroutine, or starts one; on polling it wakes the pending GET.
func (c *Conn) notifyLocked() {
	if c.transport != kindWebSocket {
		c.mu.Unlock()
		signal(c.pollWake)
		return
	}
	if c.writing {
		c.mu.Unlock()
		signal(c.wake)
		return
	}
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// startWriterLocked reports whether the caller must start writeLoop: the
// session is open on websocket with frames queued and no writer.
func (c *Conn) startWriterLocked() bool {
	if c.writing || c.state != stateOpen || c.transport != kindWebSocket || len(c.queue) == 0 {
		return false
	}
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	c.writing = true
	return true
}

// writerLinger is how long a busy writer goroutine waits for more frames
// before it ends: between one and two periods of the shared idle clock. A
// connection that is sent something every second or more often keeps its
// writer (a wake-up per flush, as a permanent writer would cost); a quiet
// one has none.
const writerLinger = time.Second

// writeLoop is the writer goroutine: it writes the queue to the websocket
// whenever it grows. It ends when the session closes (teardown takes
// over); when the queue is empty after its first flush on a connection
// that was quiet (one message now and then: a connect's reply, a rare
// event — waiting would only keep a grown stack for nothing); and after
// the queue stayed empty for writerLinger. A write error closes the
// session.
func (c *Conn) writeLoop() {
	quiet := 0   // idle clock ticks without anything to write
	flushes := 0 // flushes by this writer
	// A connection whose last writer ended less than writerLinger ago is
	// being sent a stream (a message every few hundred milliseconds): its
	// writer lingers even after one flush, not to be started per message.
	c.mu.Lock()
	busy := !c.writerEnded.IsZero() && time.Since(c.writerEnded) < writerLinger
	c.mu.Unlock()
	for {
		if err := c.flushWebSocket(context.Background()); err != nil {
			reason := ReasonTransportError
			if errors.Is(err, ErrSlowConsumer) {
				reason = ReasonSlowConsumer
			}
			c.closeWith(reason, err, modeAbort, nil)
		}
		flushes++
		c.mu.Lock()
		switch {
		case c.state != stateOpen || c.transport != kindWebSocket:
			c.stopWriterLocked()
			c.mu.Unlock()
			return
		case len(c.queue) > 0:
			c.mu.Unlock()
			quiet = 0
			continue
		case flushes == 1 && !busy:
			nc := c.netConn
			c.mu.Unlock()
			if c.quiet(nc) {
				return
			}
			continue
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
			quiet = 0
		case <-c.closing:
		case <-c.srv.idle.tick():
			c.mu.Lock()
			nc := c.netConn
			c.mu.Unlock()
			if quiet++; quiet >= 2 && c.quiet(nc) {
				return
			}
		}
	}
}

// quiet ends the writer if the queue is empty: a quiet connection keeps
// no writer, no write deadline and no queue arrays. It reports false when
// frames came meanwhile (the writer goes on). Called by the writer,
// without c.mu; nc is the websocket's connection.
func (c *Conn) quiet(nc net.Conn) bool {
	c.clearWriteDeadline(nc) // while still the writer: a next one sets its own
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state != stateOpen:
		c.stopWriterLocked() // teardown takes over, with the queue
		return true
	case len(c.queue) > 0:
		return false
	}
	c.stopWriterLocked()
	putFrames(c.queue)
	putFrames(c.spare)
	c.queue, c.spare = nil, nil
	return true
}

func (c *Conn) stopWriterLocked() {
	c.writing = false
	c.writerEnded = time.Now()
	if c.writerDone != nil {
		close(c.writerDone)
		c.writerDone = nil
	}
}

// takeWriterLocked waits until no writeLoop runs and keeps it so, for
// teardown's last flush. It unlocks and relocks c.mu while it waits.
func (c *Conn) takeWriterLocked() {
	for c.writing {
		if c.writerDone == nil {
			c.writerDone = make(chan struct{})
		}
		done := c.writerDone
		c.mu.Unlock()
		<-done
		c.mu.Lock()
	}
	c.writing = true
}

// framesPool holds the queue arrays of connections that went quiet.
var framesPool sync.Pool // of *[]Frame

func getFrames() []Frame {
	if p, _ := framesPool.Get().(*[]Frame); p != nil {
		return (*p)[:0]
	}
	return make([]Frame, 0, 4)
}

// putFrames gives a cleared queue array to the pool (not one a burst
// grew large).
func putFrames(f []Frame) {
	if cap(f) == 0 || cap(f) > 256 {
		return
	}
	clear(f[:cap(f)])
	framesPool.Put(&f)
}

// idleClock is a coarse clock shared by a server's writers: tick returns a
// channel closed at the end of the current period. It runs (one timer)
// only while somebody waits on it.
type idleClock struct {
	cur atomic.Pointer[chan struct{}]
}

func (k *idleClock) tick() <-chan struct{} {
	for {
		if ch := k.cur.Load(); ch != nil {
			return *ch
		}
		ch := make(chan struct{})
		if k.cur.CompareAndSwap(nil, &ch) {
			p := &ch
			time.AfterFunc(writerLinger, func() {
				k.cur.CompareAndSwap(p, nil)
				close(*p)
			})
			return ch
		}
	}
}

// heartbeat is the heartbeat clock's callback (heartbeat.go): it queues
// the ping when due and closes the session when a ping went unanswered
// past its deadline. It runs on the clock's timer goroutine, never behind a write:
// a peer whose write is stuck still times out. Deadlines count from when
// things were due, not from when the timer fired, so timer latency does
// not stretch them.
func (c *Conn) heartbeat() {
	cfg := &c.srv.cfg
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	switch {
	case !c.pongDeadline.IsZero() && now.After(c.pongDeadline):
		c.mu.Unlock()
		c.closeWith(ReasonPingTimeout, nil, modeAbort, nil)
		return
	case !c.pongDeadline.IsZero():
		c.srv.hb.Schedule(c, c.pongDeadline)
		c.mu.Unlock()
		return
	case now.Before(c.nextPing):
		c.srv.hb.Schedule(c, c.nextPing)
		c.mu.Unlock()
		return
	}
	// The ping goes outside the queue cap and must be answered by deadline.
	c.pongDeadline = c.nextPing.Add(cfg.PingTimeout)
	c.queue = append(c.queue, framePing)
	c.queueBytes += len(framePing.Data)
	c.srv.hb.Schedule(c, c.pongDeadline)
	c.notifyLocked()
}

// gotPong records the client's pong: the next ping is due PingInterval
// from now.
func (c *Conn) gotPong() {
	c.mu.Lock()
	if !c.pongDeadline.IsZero() && c.hbStarted && c.state == stateOpen {
		c.pongDeadline = time.Time{}
		c.nextPing = time.Now().Add(c.srv.cfg.PingInterval)
		c.srv.hb.Schedule(c, c.nextPing)
	}
	c.mu.Unlock()
}

// pongOverdue reports whether a ping went unanswered past its deadline.
// Requests check it too, so that a verdict does not wait for the heartbeat
// goroutine to be scheduled.
func (c *Conn) pongOverdue(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateOpen && !c.pongDeadline.IsZero() && now.After(c.pongDeadline)
}

// takeLocked hands the queued frames to the caller, who must give the slice
// back with recycle once written.
func (c *Conn) takeLocked() []Frame {
	out := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	c.queueBytes = 0
	c.signalDrainedLocked()
	return out
}

// recycle returns a slice obtained from takeLocked for reuse.
func (c *Conn) recycle(frames []Frame) {
	if cap(frames) == 0 {
		return
	}
	clear(frames)
	c.mu.Lock()
	if c.spare == nil {
		c.spare = frames[:0]
	}
	c.mu.Unlock()
}

func (c *Conn) dropQueueLocked() {
	clear(c.queue)
	c.queue = c.queue[:0]
	c.queueBytes = 0
	c.signalDrainedLocked()
}

func (c *Conn) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateOpen
}

// closeWith starts closing the session. It returns false if the session was
// already closing. ctx bounds the flush and the orderly close (non-abort
// modes); nil means closeFlushTimeout.
func (c *Conn) closeWith(reason Reason, err error, mode closeMode, ctx context.Context) bool {
	var cancel context.CancelFunc
	if ctx == nil && mode != modeAbort {
		ctx, cancel = context.WithTimeout(context.Background(), closeFlushTimeout)
	}
	ok := c.closeWithCancel(reason, err, mode, ctx, cancel)
	if !ok && cancel != nil {
		cancel()
	}
	return ok
}

func (c *Conn) closeWithCancel(reason Reason, err error, mode closeMode, ctx context.Context, cancel context.CancelFunc) bool {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return false
	}
	c.closeLocked(reason, err, mode, ctx, cancel)
	return true
}

// closeLocked is closeWithCancel on an open session with c.mu held; it
// unlocks c.mu.
func (c *Conn) closeLocked(reason Reason, err error, mode closeMode, ctx context.Context, cancel context.CancelFunc) {
	c.state = stateClosing
	c.reason, c.closeErr, c.mode = reason, err, mode
	if mode != modeFlush {
		c.dropQueueLocked()
	}
	if mode != modeAbort {
		c.flushCtx, c.flushCancel = ctx, cancel
		// Whatever is in flight when ctx ends (a write to a stuck peer, a
		// close handshake) is cut by closing the connection under it.
		c.stopForce = context.AfterFunc(ctx, c.forceClose)
	}
	// A polling session that flushes, or whose client sent the close
	// packet, stays reachable (bounded by ctx) until one GET took its last
	// payload: the queue, or the noop that answers the client's close even
	// when that GET raced behind the POST. Others are unknown at once.
	linger := c.transport == kindPolling && (mode == modeFlush || reason == ReasonTransportClose)
	if linger {
		c.finalDone = make(chan struct{})
	}
	nc, pnc := c.netConn, c.probeNet
	close(c.closing)
	c.mu.Unlock()
	go c.teardown()

	if !linger {
		c.srv.remove(c)
	}
	if mode == modeAbort {
		closeNet(nc)
		closeNet(pnc)
	}
}

// forceClose cuts the network connections under the session's websockets.
func (c *Conn) forceClose() {
	c.mu.Lock()
	nc, pnc := c.netConn, c.probeNet
	c.mu.Unlock()
	closeNet(nc)
	closeNet(pnc)
}

func closeNet(nc net.Conn) {
	if nc != nil {
		_ = nc.Close()
	}
}

// start starts the session's heartbeat (filed on the server's heartbeat
// clock: it runs on the clock's timer goroutine only when due, so a write
// blocked on a peer that stopped reading never delays it) and the writer, if OnConnection queued frames
// on a websocket. A session has no goroutine of its own: the writer exists
// while frames are queued (writeLoop), teardown once it closes. It is
// called by the handshake; the session is counted in Server.wg until its
// teardown ends.
func (c *Conn) start() {
	c.mu.Lock()
	c.nextPing = c.created.Add(c.srv.cfg.PingInterval)
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	c.hbStarted = true
	c.srv.hb.Schedule(c, c.nextPing)
	c.notifyLocked()
}

// flushWebSocket writes the queue to the websocket transport, one message
// per frame. It does nothing while the transport is polling.
func (c *Conn) flushWebSocket(ctx context.Context) error {
	c.mu.Lock()
	if c.transport != kindWebSocket || len(c.queue) == 0 {
		c.mu.Unlock()
		return nil
	}
	ws, cork, nc := c.ws, c.cork, c.netConn
	frames := c.takeLocked()
	c.mu.Unlock()

	// A peer that stopped reading blocks the write once the kernel buffers
	// are full; the deadline turns that into a slow consumer. A busy writer
	// moves it only when less than three quarters of WriteTimeout is left
	// (a deadline costs a timer change), so a blocked write ends between
	// 3/4 and 1 WriteTimeout after it began; the writer clears it when it
	// ends, so that the library's own writes on a quiet connection (pongs,
	// close frames) are not cut by a stale one.
	now := time.Now()
	wt := c.srv.cfg.WriteTimeout
	if nc == nil {
		c.wdeadline = now.Add(wt)
	} else if c.wdeadline.Sub(now) < wt*3/4 {
		c.wdeadline = now.Add(wt)
		_ = nc.SetWriteDeadline(c.wdeadline)
	}
	deadline := c.wdeadline

	// Corked even for one frame: the library writes a frame's header and
	// payload separately through its tiny buffer.
	if cork != nil {
		cork.Cork()
	}
	var err error
	for i := range frames {
		typ := websocket.MessageText
		if frames[i].Binary {
			typ = websocket.MessageBinary
		}
		data := frames[i].Data
		if frames[i].Tail != nil || frames[i].End != nil {
			if c.joined == nil {
				c.joined = getChunk()
			}
			*c.joined = append(append(append((*c.joined)[:0], data...), frames[i].Tail...), frames[i].End...)
			data = *c.joined
		}
		if err = ws.Write(ctx, typ, data); err != nil {
			break
		}
	}
	if cork != nil {
		if uerr := cork.Uncork(); err == nil {
			err = uerr
		}
	}
	if c.joined != nil {
		putChunk(c.joined)
		c.joined = nil
	}
	c.recycle(frames)
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(deadline)) {
		// The websocket library may report the timed-out write as its own
		// closed-connection error: the clock says what happened.
		return fmt.Errorf("%w: write blocked for %v: %w", ErrSlowConsumer, c.srv.cfg.WriteTimeout, err)
	}
	return err
}

// clearWriteDeadline undoes flushWebSocket's deadline when the writer
// ends. Called by the writer only, without c.mu.
func (c *Conn) clearWriteDeadline(nc net.Conn) {
	if nc != nil && !c.wdeadline.IsZero() {
		_ = nc.SetWriteDeadline(time.Time{})
		c.wdeadline = time.Time{}
	}
}

// teardown finishes a close requested by closeWith: flush if asked, close
// the transport, wait for the readers, unregister, call OnClose.
func (c *Conn) teardown() {
	defer c.srv.wg.Done()
	c.mu.Lock()
	c.srv.hb.Stop(c)
	c.takeWriterLocked()
	mode, ctx := c.mode, c.flushCtx
	reason, err := c.reason, c.closeErr
	kind, ws, probe := c.transport, c.ws, c.probeWS
	var park *readPark
	if c.cork != nil {
		park = c.cork.park
	}
	finalDone := c.finalDone
	stopForce, cancel := c.stopForce, c.flushCancel
	c.mu.Unlock()

	if probe != nil {
		_ = probe.CloseNow()
	}
	switch {
	case kind == kindWebSocket && ws != nil:
		if mode == modeFlush {
			if ferr := c.flushWebSocket(ctx); ferr != nil {
				c.srv.log.Debug("engineio: flush on close failed", "sid", c.id, "err", ferr)
			}
		}
		// No read parks while the library closes (its Close reads the
		// peer's close frame); a read parked before is given back after.
		park.closeLocked(func() {
			if mode == modeAbort {
				_ = ws.CloseNow()
			} else {
				status := websocket.StatusNormalClosure
				if reason == ReasonServerShutdown {
					status = websocket.StatusGoingAway
				}
				_ = ws.Close(status, "")
			}
		})
		park.release(c)
	case kind == kindPolling && finalDone != nil && c.awaitsFinalPoll():
		// A live polling client re-polls as soon as a GET is answered, so
		// the last payload is fetched within moments, or never.
		limit := time.NewTimer(closeFlushTimeout)
		select {
		case <-finalDone:
		case <-ctx.Done():
		case <-limit.C:
		}
		limit.Stop()
	}

	c.readers.Wait()
	if stopForce != nil {
		stopForce()
	}
	if cancel != nil {
		cancel()
	}
	c.srv.remove(c)

	c.mu.Lock()
	c.state = stateClosed
	c.dropQueueLocked()
	c.spare = nil
	c.ws, c.netConn, c.probeWS, c.probeNet = nil, nil, nil, nil
	c.cork, c.probeCork = nil, nil
	c.mu.Unlock()

	c.deliverMu.Lock()
	if h := c.handlers.Load(); h != nil && h.OnClose != nil {
		h.OnClose(reason, err)
	}
	c.deliverMu.Unlock()
	c.mu.Lock()
	c.ended = true
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
}

// awaitsFinalPoll reports whether a lingering polling session should wait
// for a GET: one is pending, or there is something to flush, or the client
// closed and its GET may be racing behind the POST.
func (c *Conn) awaitsFinalPoll() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.finalSent && (c.pollActive || len(c.queue) > 0 || c.mode != modeFlush)
}

// deliver hands one incoming message to OnMessage.
func (c *Conn) deliver(data []byte, binary bool) {
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	if !c.isOpen() {
		return
	}
	if h := c.handlers.Load(); h != nil && h.OnMessage != nil {
		h.OnMessage(data, binary)
	}
}

// handlePacket acts on one incoming packet. It returns false when the
// session is closing because of it.
func (c *Conn) handlePacket(p packet) bool {
	switch p.typ {
	case typeMessage:
		c.deliver(p.data, p.binary)
	case typePong:
		c.gotPong()
	case typeClose:
		c.closeWith(ReasonTransportClose, nil, modeClose, nil)
		return false
	case typePing:
		// Engine.IO v4: only the server pings.
		c.closeWith(ReasonTransportError, ErrHeartbeatDirection, modeAbort, nil)
		return false
	}
	// open, upgrade and noop are ignored on an established transport, as
	// engine.io does.
	return true
}
