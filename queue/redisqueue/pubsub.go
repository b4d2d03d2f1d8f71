package redisqueue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/internal/redispubsub"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/core"
)

// Live delivery for the Redis store.
//
// Every user with subscribers on this Store has an entry, keyed by its live
// channel. The channels are subscribed through one redispubsub.Subscriber
// (one pub/sub connection per Redis master: one in total on a standalone or
// Sentinel Redis), which reconnects, checks liveness and re-subscribes; its
// readers dispatch messages to entries. The hub's housekeeper goroutine
// retries pending gap fills and unsubscribes entries that stayed without
// subscribers.
//
// Gap-free delivery: an entry remembers the last ID it delivered (lastID)
// and delivers only greater IDs. Whenever Redis confirms a subscription of
// an entry that was already active — after a reconnect, or a replaced
// connection — messages may have been published while it was not
// subscribed, so the entry reads the stream after lastID and delivers what
// it missed before any further live message (a "fill"). If that read fails
// the entry retries later and holds live messages back meanwhile (they are
// in the stream); if the entries were trimmed it ends with queue.ErrGap.
//
// Lock order: entry.dmu, then hub.mu, then the Subscriber's lock.

// Default timing of the hub (fields of hub so tests can shorten them).
const (
	hubTick   = time.Second      // housekeeping period
	idleGrace = 10 * time.Second // keep an entry without subscribers this long
)

const (
	fillPage    = 500
	fillTimeout = 5 * time.Second
)

type hub struct {
	r      *Store
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	down   atomic.Bool // a pub/sub failure was logged, the recovery not yet

	// Timing; set before the first Subscribe. healthCheck 0 is the
	// Subscriber's default.
	period, idleGrace, healthCheck time.Duration

	mu      sync.RWMutex
	entries map[string]*entry       // by live channel
	sub     *redispubsub.Subscriber // nil until the first Subscribe
	closed  bool
}

// entry is one user's live channel on this Store.
type entry struct {
	user, ch string

	// Guarded by hub.mu.
	subs       []*redisSub // copy on write
	ready      chan struct{}
	active     bool  // Redis confirmed the subscription; ready is closed
	err        error // the subscription failed; ready is closed
	subscribed bool  // the channel was added to the Subscriber
	idleSince  time.Time

	// Guarded by dmu, which serialises deliveries.
	dmu      sync.Mutex
	lastID   core.ID
	needFill bool
}

type redisSub struct {
	fn   func(queue.Message, error)
	done atomic.Bool
}

func newHub(r *Store) *hub {
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{
		r:       r,
		ctx:     ctx,
		cancel:  cancel,
		entries: make(map[string]*entry),

		period:    hubTick,
		idleGrace: idleGrace,
	}
}

// startLocked starts the Subscriber and the housekeeper. Callers hold h.mu.
func (h *hub) startLocked() {
	h.sub = redispubsub.New(redispubsub.Config{
		Client:       h.r.client,
		OnMessage:    h.onMessage,
		OnSubscribed: h.onSubscribed,
		OnFailure:    h.onFailure,
		OnRecover:    h.onRecover,
		OnDial: func(d time.Duration) {
			if m := h.r.met; m != nil {
				m.RedisCommandDuration.WithLabelValues("subscribe").Observe(d.Seconds())
			}
		},
		Unavailable: queue.ErrUnavailable,
		HealthCheck: h.healthCheck,
		Logger:      h.r.log,
	})
	h.wg.Add(1)
	go h.housekeep()
}

func (h *hub) onFailure(err error) {
	if m := h.r.met; m != nil {
		m.RedisErrors.WithLabelValues("subscribe").Inc()
	}
	if h.ctx.Err() == nil && !h.down.Swap(true) {
		h.r.log.Warn("queue: pub/sub connection lost", "err", err)
	}
}

func (h *hub) onRecover() {
	if h.down.Swap(false) {
		h.r.log.Info("queue: pub/sub connection recovered")
	}
}

// ready reports whether every live subscription is established.
func (h *hub) ready() error {
	h.mu.RLock()
	sub := h.sub
	h.mu.RUnlock()
	if sub == nil {
		return nil
	}
	return sub.Ready()
}

func key(ch string) redispubsub.Key { return redispubsub.Key{Kind: redispubsub.Shard, Name: ch} }

func (h *hub) subscribe(ctx context.Context, user string, fn func(queue.Message, error)) (func(), error) {
	ch := h.r.liveChannel(user)
	s := &redisSub{fn: fn}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, queue.ErrClosed
	}
	if h.sub == nil {
		h.startLocked()
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
// later fill knows where live delivery began, then subscribes. The entry
// becomes active when Redis confirms the subscription (onSubscribed).
func (h *hub) start(ctx context.Context, e *entry) error {
	last, err := h.r.Last(ctx, e.user)
	if err != nil {
		return err
	}
	id, _ := core.ParseID(last)
	e.dmu.Lock()
	if e.lastID.Less(id) {
		e.lastID = id
	}
	e.dmu.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return queue.ErrClosed
	}
	e.subscribed = true
	confirmed := h.sub.Add(key(e.ch))
	h.mu.Unlock()
	if confirmed {
		// Another entry of the channel, on its way out, still holds the
		// subscription: no new confirmation will come.
		h.activate(e)
	}
	return nil
}

// activate makes a pending entry active; false when it was already.
func (h *hub) activate(e *entry) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.active || e.err != nil {
		return false
	}
	e.active = true
	close(e.ready)
	return true
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

// removeEntry forgets e and unsubscribes its channel.
func (h *hub) removeEntry(e *entry) {
	h.mu.Lock()
	if h.entries[e.ch] == e {
		delete(h.entries, e.ch)
	}
	h.mu.Unlock()
	h.removeChannel(e)
}

// removeChannel drops e's reference to its channel (the Subscriber counts
// them: a new entry of the same channel keeps it subscribed).
func (h *hub) removeChannel(e *entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.subscribed {
		e.subscribed = false
		h.sub.Remove(key(e.ch))
	}
}

// onMessage delivers a live message; it runs on a Subscriber reader.
func (h *hub) onMessage(m *redis.Message) {
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
}

// onSubscribed is told when Redis confirms the subscription of a channel:
// a pending entry becomes active; an active one was re-subscribed and
// recovers what was published meanwhile.
func (h *hub) onSubscribed(k redispubsub.Key) {
	h.mu.RLock()
	e := h.entries[k.Name]
	h.mu.RUnlock()
	if e == nil || h.activate(e) {
		return
	}
	h.mu.RLock()
	active := e.active
	h.mu.RUnlock()
	if !active {
		return // failed
	}
	e.dmu.Lock()
	e.needFill = true
	h.fill(e)
	e.dmu.Unlock()
}

// deliver hands m to e's subscribers if it follows what they were given.
// Callers hold e.dmu.
func (h *hub) deliver(e *entry, m queue.Message) {
	id, err := core.ParseID(m.ID)
	if err != nil || !e.lastID.Less(id) {
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
		case errors.Is(err, queue.ErrOffsetExpired):
			e.needFill = false
			h.lose(e, fmt.Errorf("%w: %q: %w", queue.ErrGap, e.user, err))
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
			s.fn(queue.Message{}, err)
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

// tick unsubscribes the entries idle for idleGrace and retries pending
// fills.
func (h *hub) tick(now time.Time) {
	var idle, filling []*entry
	h.mu.RLock()
	for _, e := range h.entries {
		if len(e.subs) == 0 && !e.idleSince.IsZero() && now.Sub(e.idleSince) >= h.idleGrace {
			idle = append(idle, e)
		} else if e.active {
			filling = append(filling, e)
		}
	}
	h.mu.RUnlock()
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

// close ends every subscription with queue.ErrClosed and stops the goroutines.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	sub := h.sub
	entries := make([]*entry, 0, len(h.entries))
	for _, e := range h.entries {
		entries = append(entries, e)
		if !e.active && e.err == nil {
			e.err = queue.ErrClosed
			close(e.ready)
		}
	}
	clear(h.entries)
	h.mu.Unlock()
	h.cancel()
	if sub != nil {
		sub.Close()
	}
	h.wg.Wait()
	for _, e := range entries {
		h.mu.Lock()
		subs := e.subs
		e.subs = nil
		h.mu.Unlock()
		for _, s := range subs {
			if !s.done.Swap(true) {
				s.fn(queue.Message{}, queue.ErrClosed)
			}
		}
	}
}
