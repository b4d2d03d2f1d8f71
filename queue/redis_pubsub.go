package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Live delivery for the Redis store.
//
// Every user with subscribers on this Store has an entry, keyed by its live
// channel. Entries share one pub/sub connection (psConn) per Redis master:
// one in total on a standalone or Sentinel Redis. Each psConn has a reader
// goroutine that dispatches messages to entries; the hub's housekeeper
// goroutine pings idle connections, replaces dead ones, retries pending
// gap fills and unsubscribes entries that stayed without subscribers.
//
// Gap-free delivery: an entry remembers the last ID it delivered (lastID)
// and delivers only greater IDs. Whenever Redis confirms a subscription of
// an entry that was already active — after a reconnect, or a replaced
// connection — messages may have been published while it was not
// subscribed, so the entry reads the stream after lastID and delivers what
// it missed before any further live message (a "fill"). If that read fails
// the entry retries later and holds live messages back meanwhile (they are
// in the stream); if the entries were trimmed it ends with ErrGap.
//
// Lock order: entry.dmu, then psConn.wmu, then hub.mu.

// Default timing of the hub (fields of hub so tests can shorten them).
const (
	hubTick   = time.Second      // housekeeping period
	pingAfter = 5 * time.Second  // ping a connection silent for this long
	deadAfter = 15 * time.Second // replace a connection silent for this long
	idleGrace = 10 * time.Second // keep an entry without subscribers this long
)

const (
	fillPage       = 500
	subscribeBatch = 512
	fillTimeout    = 5 * time.Second
	minBackoff     = 50 * time.Millisecond
	maxBackoff     = 2 * time.Second
	unsubscribeTTL = 2 * time.Second
)

type hub struct {
	r      *Redis
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Timing; set before the first Subscribe.
	period, pingAfter, deadAfter, idleGrace time.Duration

	mu      sync.RWMutex
	entries map[string]*entry  // by live channel
	conns   map[string]*psConn // by master address, "" when not a Cluster
	closed  bool
	started bool // housekeeper running
}

// entry is one user's live channel on this Store.
type entry struct {
	user, ch string

	// Guarded by hub.mu.
	conn      *psConn
	subs      []*redisSub // copy on write
	ready     chan struct{}
	active    bool  // Redis confirmed the subscription; ready is closed
	err       error // the subscription failed; ready is closed
	idleSince time.Time

	// Guarded by dmu, which serialises deliveries.
	dmu      sync.Mutex
	lastID   entryID
	needFill bool
}

type redisSub struct {
	fn   func(Message, error)
	done atomic.Bool
}

// psConn is one pub/sub connection and the channels it should carry.
type psConn struct {
	h    *hub
	addr string

	wmu     sync.Mutex          // serialises (un)subscribe writes and replacement
	chans   map[string]struct{} // guarded by wmu
	running bool                // reader started; guarded by wmu

	wake      chan struct{}                // signals the reader that ps was set
	ps        atomic.Pointer[redis.PubSub] // nil while c carries no channel
	lastRecv  atomic.Int64                 // unix nanos of the last message read
	failing   atomic.Bool                  // logged a failure, not yet recovered
	reconnect atomic.Bool                  // the housekeeper should replace ps
}

func newHub(r *Redis) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{
		r:       r,
		ctx:     ctx,
		cancel:  cancel,
		entries: make(map[string]*entry),
		conns:   make(map[string]*psConn),

		period:    hubTick,
		pingAfter: pingAfter,
		deadAfter: deadAfter,
		idleGrace: idleGrace,
	}
}

func (h *hub) subscribe(ctx context.Context, user string, fn func(Message, error)) (func(), error) {
	ch := h.r.liveChannel(user)
	s := &redisSub{fn: fn}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if !h.started {
		h.started = true
		h.wg.Add(1)
		go h.housekeep()
	}
	e := h.entries[ch]
	create := e == nil
	if create {
		e = &entry{user: user, ch: ch, ready: make(chan struct{})}
		h.entries[ch] = e
	}
	e.subs = append(slices.Clip(e.subs), s)
	e.idleSince = time.Time{}
	h.mu.Unlock()

	if create {
		if err := h.start(ctx, e); err != nil {
			h.fail(e, err)
		}
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		h.unsubscribe(e, s)
		return nil, unavailable("subscribe", ctx.Err())
	}
	h.mu.RLock()
	err := e.err
	h.mu.RUnlock()
	if err != nil {
		h.unsubscribe(e, s)
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { h.unsubscribe(e, s) }) }, nil
}

// start establishes a new entry: it reads the stream's last ID, so that a
// later fill knows where live delivery began, then subscribes.
func (h *hub) start(ctx context.Context, e *entry) error {
	last, err := h.r.Last(ctx, e.user)
	if err != nil {
		return err
	}
	id, _ := parseID(last)
	e.dmu.Lock()
	if e.lastID.less(id) {
		e.lastID = id
	}
	e.dmu.Unlock()
	addr := ""
	if cc, ok := h.r.client.(*redis.ClusterClient); ok {
		n, err := cc.MasterForKey(ctx, e.ch)
		if err != nil {
			return unavailable("subscribe", err)
		}
		addr = n.Options().Addr
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	c := h.conns[addr]
	if c == nil {
		c = &psConn{h: h, addr: addr, chans: make(map[string]struct{}), wake: make(chan struct{}, 1)}
		h.conns[addr] = c
	}
	e.conn = c
	h.mu.Unlock()

	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.chans[e.ch] = struct{}{}
	if ps := c.ps.Load(); ps != nil {
		start := time.Now()
		err := ps.SSubscribe(h.ctx, e.ch)
		observeRedis(h.r.met, "subscribe", start, err)
		// On error the reader notices the broken connection and its
		// replacement subscribes every channel, this one included.
		return nil
	}
	// Connecting failed or never happened: the housekeeper retries.
	c.connectLocked()
	return nil
}

// fail ends a pending entry with err.
func (h *hub) fail(e *entry, err error) {
	h.mu.Lock()
	if e.active || e.err != nil {
		h.mu.Unlock()
		return
	}
	e.err = err
	close(e.ready)
	if h.entries[e.ch] == e {
		delete(h.entries, e.ch)
	}
	h.mu.Unlock()
	h.removeChannel(e)
}

// unsubscribe removes s from e; an entry left without subscribers is
// unsubscribed by the housekeeper after idleGrace, so that a quick
// reconnect of the same user reuses it.
func (h *hub) unsubscribe(e *entry, s *redisSub) {
	s.done.Store(true)
	h.mu.Lock()
	if i := slices.Index(e.subs, s); i >= 0 {
		e.subs = slices.Delete(slices.Clone(e.subs), i, i+1)
		if len(e.subs) == 0 {
			e.idleSince = time.Now()
		}
	}
	h.mu.Unlock()
}

// removeEntry forgets e and unsubscribes its channel unless a new entry
// took its place meanwhile.
func (h *hub) removeEntry(e *entry) {
	h.mu.Lock()
	if h.entries[e.ch] == e {
		delete(h.entries, e.ch)
	}
	h.mu.Unlock()
	h.removeChannel(e)
}

func (h *hub) removeChannel(e *entry) {
	h.mu.RLock()
	c := e.conn
	h.mu.RUnlock()
	if c == nil {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	h.mu.RLock()
	_, back := h.entries[e.ch]
	h.mu.RUnlock()
	if back {
		return // a new entry subscribes (or subscribed) this channel again
	}
	delete(c.chans, e.ch)
	if ps := c.ps.Load(); ps != nil {
		ctx, cancel := context.WithTimeout(h.ctx, unsubscribeTTL)
		_ = ps.SUnsubscribe(ctx, e.ch)
		cancel()
	}
}

// connectLocked opens a new pub/sub connection carrying every channel of
// c, replacing the current one (closed afterwards), and starts the reader.
// A connection without channels is closed and not replaced: a Cluster
// pub/sub connects to the node of its first channel, so the next channel
// opens the next connection. On failure the current connection is kept and
// false returned. Callers hold c.wmu.
func (c *psConn) connectLocked() bool {
	h := c.h
	if h.ctx.Err() != nil {
		return false
	}
	var ps *redis.PubSub
	if len(c.chans) > 0 {
		ps = h.r.client.SSubscribe(h.ctx)
		chans := make([]string, 0, len(c.chans))
		for ch := range c.chans {
			chans = append(chans, ch)
		}
		// On a Cluster one SSUBSCRIBE may not span slots: one command per
		// channel. Elsewhere, batches.
		batch := subscribeBatch
		if _, ok := h.r.client.(*redis.ClusterClient); ok {
			batch = 1
		}
		start := time.Now()
		for len(chans) > 0 {
			n := min(batch, len(chans))
			if err := ps.SSubscribe(h.ctx, chans[:n]...); err != nil {
				observeRedis(h.r.met, "subscribe", start, err)
				_ = ps.Close()
				return false
			}
			chans = chans[n:]
		}
		observeRedis(h.r.met, "subscribe", start, nil)
	}
	old := c.ps.Swap(ps)
	c.lastRecv.Store(time.Now().UnixNano())
	if old != nil {
		_ = old.Close()
	}
	if !c.running {
		c.running = true
		h.wg.Add(1)
		go c.read()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

func (c *psConn) hasChannels() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.chans) > 0
}

// read is the connection's reader: it dispatches messages until the hub
// closes, and replaces the connection (with backoff) when it fails.
func (c *psConn) read() {
	h := c.h
	defer h.wg.Done()
	backoff := minBackoff
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		ps := c.ps.Load()
		if ps == nil {
			select {
			case <-h.ctx.Done():
				return
			case <-c.wake:
			}
			continue
		}
		msg, err := ps.Receive(h.ctx)
		if err != nil {
			if h.ctx.Err() != nil {
				return
			}
			if c.ps.Load() != ps {
				continue // replaced by the housekeeper
			}
			if !c.failing.Swap(true) {
				h.r.log.Warn("queue: pub/sub connection lost", "addr", c.addr, "err", err)
			}
			if h.r.met != nil {
				h.r.met.RedisErrors.WithLabelValues("subscribe").Inc()
			}
			timer.Reset(backoff)
			select {
			case <-h.ctx.Done():
				return
			case <-timer.C:
			}
			backoff = min(2*backoff, maxBackoff)
			c.wmu.Lock()
			if c.ps.Load() == ps {
				c.connectLocked()
			}
			c.wmu.Unlock()
			continue
		}
		backoff = minBackoff
		c.lastRecv.Store(time.Now().UnixNano())
		h.dispatch(c, msg)
	}
}

func (h *hub) dispatch(c *psConn, msg any) {
	switch m := msg.(type) {
	case *redis.Message:
		h.mu.RLock()
		e := h.entries[m.Channel]
		active := e != nil && e.active
		h.mu.RUnlock()
		if !active {
			return
		}
		lm, err := decodeLive(m.Payload)
		e.dmu.Lock()
		if err != nil {
			// Not our encoding: recover the entry from the stream instead.
			h.r.log.Warn("queue: undecodable live message", "channel", m.Channel, "err", err)
			e.needFill = true
		}
		if !e.needFill || h.fill(e) {
			if err == nil {
				h.deliver(e, lm)
			}
		}
		e.dmu.Unlock()
	case *redis.Subscription:
		switch m.Kind {
		case "ssubscribe":
			if c.failing.Swap(false) {
				h.r.log.Info("queue: pub/sub connection recovered", "addr", c.addr)
			}
			h.mu.Lock()
			e := h.entries[m.Channel]
			if e == nil || e.err != nil {
				h.mu.Unlock()
				return
			}
			if !e.active {
				e.active = true
				close(e.ready)
				h.mu.Unlock()
				return
			}
			h.mu.Unlock()
			// Re-subscribed: recover what was published meanwhile.
			e.dmu.Lock()
			e.needFill = true
			h.fill(e)
			e.dmu.Unlock()
		case "sunsubscribe":
			h.mu.RLock()
			e := h.entries[m.Channel]
			unasked := e != nil && e.active && e.conn == c
			h.mu.RUnlock()
			if unasked {
				// Redis dropped the subscription (a Cluster slot moved).
				h.r.log.Warn("queue: subscription dropped by redis", "channel", m.Channel)
				c.reconnect.Store(true)
			}
		}
	}
}

// deliver hands m to e's subscribers if it follows what they were given.
// Callers hold e.dmu.
func (h *hub) deliver(e *entry, m Message) {
	id, err := parseID(m.ID)
	if err != nil || !e.lastID.less(id) {
		return
	}
	e.lastID = id
	h.mu.RLock()
	subs := e.subs
	h.mu.RUnlock()
	for _, s := range subs {
		if !s.done.Load() {
			s.fn(m, nil)
		}
	}
}

// fill delivers the entries of e's stream after lastID. It reports whether
// e is caught up. Callers hold e.dmu.
func (h *hub) fill(e *entry) bool {
	for {
		ctx, cancel := context.WithTimeout(h.ctx, fillTimeout)
		msgs, err := h.r.Read(ctx, e.user, e.lastID.String(), fillPage)
		cancel()
		switch {
		case errors.Is(err, ErrOffsetExpired):
			e.needFill = false
			h.lose(e, fmt.Errorf("%w: %q: %w", ErrGap, e.user, err))
			return false
		case err != nil:
			e.needFill = true
			return false
		}
		for _, m := range msgs {
			h.deliver(e, m)
		}
		if len(msgs) < fillPage {
			e.needFill = false
			return true
		}
	}
}

// lose ends every subscription of e with err and forgets e. Callers hold
// e.dmu.
func (h *hub) lose(e *entry, err error) {
	h.r.log.Warn("queue: live subscription lost", "user", e.user, "err", err)
	h.mu.Lock()
	subs := e.subs
	e.subs = nil
	if h.entries[e.ch] == e {
		delete(h.entries, e.ch)
	}
	h.mu.Unlock()
	for _, s := range subs {
		if !s.done.Swap(true) {
			s.fn(Message{}, err)
		}
	}
	h.removeChannel(e)
}

// housekeep runs every hubTick until the hub closes.
func (h *hub) housekeep() {
	defer h.wg.Done()
	t := time.NewTicker(h.period)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.tick(time.Now())
	}
}

func (h *hub) tick(now time.Time) {
	var idle, filling []*entry
	h.mu.RLock()
	conns := make([]*psConn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	for _, e := range h.entries {
		if len(e.subs) == 0 && !e.idleSince.IsZero() && now.Sub(e.idleSince) >= h.idleGrace {
			idle = append(idle, e)
		} else if e.active {
			filling = append(filling, e)
		}
	}
	h.mu.RUnlock()

	for _, c := range conns {
		ps := c.ps.Load()
		silent := now.Sub(time.Unix(0, c.lastRecv.Load()))
		switch {
		case ps == nil && !c.hasChannels():
		case ps == nil || c.reconnect.Load() || silent >= h.deadAfter:
			c.wmu.Lock()
			if c.ps.Load() == ps && h.ctx.Err() == nil {
				if ps != nil && !c.failing.Swap(true) {
					h.r.log.Warn("queue: pub/sub connection unresponsive; replacing it", "addr", c.addr)
				}
				if c.connectLocked() {
					c.reconnect.Store(false)
				}
			}
			c.wmu.Unlock()
		case silent >= h.pingAfter:
			ctx, cancel := context.WithTimeout(h.ctx, time.Second)
			_ = ps.Ping(ctx)
			cancel()
		}
	}
	for _, e := range idle {
		h.mu.RLock()
		still := len(e.subs) == 0 && !e.idleSince.IsZero()
		h.mu.RUnlock()
		if still {
			h.removeEntry(e)
		}
	}
	for _, e := range filling {
		if !e.dmu.TryLock() {
			continue // busy delivering: the reader retries the fill itself
		}
		if e.needFill {
			h.fill(e)
		}
		e.dmu.Unlock()
	}
}

// close ends every subscription with ErrClosed and stops the goroutines.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	conns := make([]*psConn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	entries := make([]*entry, 0, len(h.entries))
	for _, e := range h.entries {
		entries = append(entries, e)
		if !e.active && e.err == nil {
			e.err = ErrClosed
			close(e.ready)
		}
	}
	clear(h.entries)
	h.mu.Unlock()
	h.cancel()
	for _, c := range conns {
		c.wmu.Lock()
		if ps := c.ps.Load(); ps != nil {
			_ = ps.Close()
		}
		c.wmu.Unlock()
	}
	h.wg.Wait()
	for _, e := range entries {
		h.mu.Lock()
		subs := e.subs
		e.subs = nil
		h.mu.Unlock()
		for _, s := range subs {
			if !s.done.Swap(true) {
				s.fn(Message{}, ErrClosed)
			}
		}
	}
}
