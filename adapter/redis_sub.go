package adapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// subKind is a kind of Redis subscription.
type subKind uint8

const (
	subChannel subKind = iota // SUBSCRIBE
	subPattern                // PSUBSCRIBE
	subShard                  // SSUBSCRIBE
)

func (k subKind) String() string {
	return [...]string{"subscribe", "psubscribe", "ssubscribe"}[k]
}

type subKey struct {
	kind subKind
	name string
}

// Reconnection and health-check timing of the subscriber.
const (
	subMinBackoff  = 100 * time.Millisecond
	subMaxBackoff  = 2 * time.Second
	subHealthCheck = 3 * time.Second // a silent connection is PINGed after this long
	subDialTimeout = 5 * time.Second
)

var (
	errSlotMoved     = errors.New("adapter: shard channel moved to another node")
	errNotSubscribed = fmt.Errorf("%w: subscriptions not established yet", ErrUnavailable)
	errNotConfirmed  = fmt.Errorf("%w: subscriptions not confirmed yet", ErrUnavailable)
)

// subscriber holds the pub/sub connection(s) a node shares between all its
// namespaces, and re-establishes them after a failure.
//
// It owns re-subscription instead of leaving it to go-redis: go-redis does
// re-subscribe a PubSub on its own after a reconnect (see
// TestGoRedisResubscribes), but in one command for every shard channel,
// which a Redis Cluster refuses when they span slots (CROSSSLOT), and on the
// node of an arbitrary channel. So each (re)connection is a fresh PubSub to
// which the subscriber sends what it wants: one SSUBSCRIBE per shard channel,
// on a connection to the master that owns the channel's slot.
//
// Goroutines: one supervisor (connects, reconciles, backs off) and one reader
// per live connection; close stops them all. While Redis is away only the
// supervisor runs.
type subscriber struct {
	client redis.UniversalClient
	// cluster is set when shard channels must be spread over the masters of
	// a Redis Cluster: one connection per master then.
	cluster   *redis.ClusterClient
	onMessage func(*redis.Message)
	onFailure func(error)         // a connection failed (metrics and logs)
	onRecover func()              // every connection is live again
	onDial    func(time.Duration) // a connection was made and subscribed (metrics)
	log       *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu      sync.Mutex
	want    map[subKey]int      // wanted subscriptions, reference-counted
	conns   map[string]*subConn // by master address; "" for the single connection
	unsub   map[string]int      // SUNSUBSCRIBE confirmations still to come (cluster)
	lastErr error               // last failure, nil once everything is live again
	reload  bool                // reload the cluster's slot map before the next reconcile
	routes  map[string]string   // shard channel -> master address (cluster)
}

type subConn struct {
	addr   string
	ps     *redis.PubSub
	subs   map[subKey]struct{} // what was sent on this connection (guarded by subscriber.mu)
	marked bool                // the PING that confirms the first subscriptions was sent (subscriber.mu)
	pongs  atomic.Int32
	live   atomic.Bool
}

func newSubscriber(client redis.UniversalClient, sharded bool, log *slog.Logger, onMessage func(*redis.Message), onFailure func(error), onRecover func(), onDial func(time.Duration)) *subscriber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{
		client:    client,
		onMessage: onMessage,
		onFailure: onFailure,
		onRecover: onRecover,
		onDial:    onDial,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		kick:      make(chan struct{}, 1),
		want:      make(map[subKey]int),
		conns:     make(map[string]*subConn),
		unsub:     make(map[string]int),
		routes:    make(map[string]string),
		lastErr:   errNotSubscribed,
	}
	if cc, ok := client.(*redis.ClusterClient); ok && sharded {
		s.cluster = cc
	}
	s.wg.Add(1)
	go s.supervise()
	return s
}

func (s *subscriber) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// close stops every goroutine and closes every connection.
func (s *subscriber) close() {
	s.cancel()
	s.mu.Lock()
	for addr, c := range s.conns {
		_ = c.ps.Close()
		delete(s.conns, addr)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// err returns nil when every connection is established and its
// subscriptions confirmed.
func (s *subscriber) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil {
		return s.lastErr
	}
	if s.cluster == nil && s.conns[""] == nil {
		return errNotSubscribed
	}
	for _, c := range s.conns {
		if !c.live.Load() {
			return errNotConfirmed
		}
	}
	return nil
}

// add subscribes to name (once, however many callers want it). It sends the
// command when the connection it belongs on is up, and otherwise leaves it
// to the supervisor; it never waits for Redis to answer.
func (s *subscriber) add(kind subKind, name string) {
	k := subKey{kind, name}
	addr, routed := "", false
	if s.cluster != nil && kind == subShard {
		// The slot's master, from go-redis' cached cluster state.
		if m, err := s.cluster.MasterForKey(s.ctx, name); err == nil {
			addr, routed = m.Options().Addr, true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.want[k]++
	if s.want[k] > 1 {
		return
	}
	if routed {
		s.routes[name] = addr
	}
	c := s.connForLocked(k)
	if c == nil {
		s.poke()
		return
	}
	if err := subscribe(s.ctx, c.ps, k); err != nil {
		_ = c.ps.Close() // its reader reports the failure; the supervisor rebuilds
		return
	}
	c.subs[k] = struct{}{}
}

// remove drops one reference to name, unsubscribing with the last.
func (s *subscriber) remove(kind subKind, name string) {
	k := subKey{kind, name}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.want[k] == 0 {
		return
	}
	s.want[k]--
	if s.want[k] > 0 {
		return
	}
	delete(s.want, k)
	delete(s.routes, name)
	for _, c := range s.conns {
		if _, ok := c.subs[k]; ok {
			s.unsubscribeLocked(c, k)
		}
	}
}

func (s *subscriber) unsubscribeLocked(c *subConn, k subKey) {
	delete(c.subs, k)
	if k.kind == subShard && s.cluster != nil {
		s.unsub[k.name]++
	}
	if err := unsubscribe(s.ctx, c.ps, k); err != nil {
		_ = c.ps.Close()
	}
}

// connForLocked returns the live connection k belongs on, nil when there is
// none yet (the supervisor makes it).
func (s *subscriber) connForLocked(k subKey) *subConn {
	if s.cluster == nil || k.kind != subShard {
		return s.conns[""]
	}
	addr, ok := s.routes[k.name]
	if !ok {
		return nil
	}
	return s.conns[addr]
}

func subscribe(ctx context.Context, ps *redis.PubSub, k subKey) error {
	switch k.kind {
	case subPattern:
		return ps.PSubscribe(ctx, k.name)
	case subShard:
		return ps.SSubscribe(ctx, k.name)
	}
	return ps.Subscribe(ctx, k.name)
}

func unsubscribe(ctx context.Context, ps *redis.PubSub, k subKey) error {
	switch k.kind {
	case subPattern:
		return ps.PUnsubscribe(ctx, k.name)
	case subShard:
		return ps.SUnsubscribe(ctx, k.name)
	}
	return ps.Unsubscribe(ctx, k.name)
}

// supervise (re)establishes the connections: after a failure it backs off
// (100 ms doubling to 2 s) and tries again until it succeeds or close.
func (s *subscriber) supervise() {
	defer s.wg.Done()
	delay := subMinBackoff
	for {
		err := s.reconcile()
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			s.fail(err)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
			delay = min(2*delay, subMaxBackoff)
			continue
		}
		delay = subMinBackoff
		s.checkLive()
		select {
		case <-s.kick:
		case <-s.ctx.Done():
			return
		}
	}
}

// fail records a failure.
func (s *subscriber) fail(err error) {
	s.mu.Lock()
	s.lastErr = fmt.Errorf("%w: %v", ErrUnavailable, err)
	if s.cluster != nil {
		s.reload = true
	}
	s.mu.Unlock()
	if s.onFailure != nil {
		s.onFailure(err)
	}
}

// reconcile makes the connections and their subscriptions match what is
// wanted.
func (s *subscriber) reconcile() error {
	// Where each subscription goes (may talk to the cluster: no lock held).
	need := map[string]*redis.Client{}
	if s.cluster == nil {
		need[""] = nil
	} else {
		s.mu.Lock()
		reload := s.reload
		s.reload = false
		var shards []string
		for k := range s.want {
			if k.kind == subShard {
				shards = append(shards, k.name)
			}
		}
		s.mu.Unlock()
		if reload {
			s.cluster.ReloadState(s.ctx)
		}
		routes := make(map[string]string, len(shards))
		for _, ch := range shards {
			m, err := s.cluster.MasterForKey(s.ctx, ch)
			if err != nil {
				return fmt.Errorf("route %q: %w", ch, err)
			}
			addr := m.Options().Addr
			routes[ch] = addr
			need[addr] = m
		}
		s.mu.Lock()
		for ch, addr := range routes {
			if _, wanted := s.want[subKey{subShard, ch}]; wanted {
				s.routes[ch] = addr
			}
		}
		s.mu.Unlock()
	}

	// Connect where there is no connection yet.
	var dialed []*subConn
	start := time.Now()
	defer func() {
		if len(dialed) > 0 && s.onDial != nil {
			s.onDial(time.Since(start))
		}
	}()
	for addr, client := range need {
		s.mu.Lock()
		have := s.conns[addr] != nil
		s.mu.Unlock()
		if have {
			continue
		}
		c, err := s.dial(addr, client)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			_ = c.ps.Close()
			return s.ctx.Err()
		}
		s.conns[addr] = c
		s.mu.Unlock()
		dialed = append(dialed, c)
		s.log.Debug("adapter: pub/sub connection established", "addr", addr)
		s.wg.Add(1)
		go s.read(c)
	}

	// Send what is missing, take back what moved or is no longer wanted.
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, c := range s.conns {
		if _, needed := need[addr]; !needed && s.cluster != nil {
			for k := range c.subs {
				delete(c.subs, k)
			}
			_ = c.ps.Close()
			delete(s.conns, addr)
			continue
		}
		for k := range c.subs {
			if s.want[k] == 0 || s.routeLocked(k) != addr {
				s.unsubscribeLocked(c, k)
			}
		}
		for k := range s.want {
			if _, ok := c.subs[k]; ok || s.routeLocked(k) != addr {
				continue
			}
			if err := subscribe(s.ctx, c.ps, k); err != nil {
				_ = c.ps.Close()
				return fmt.Errorf("%s %q: %w", k.kind, k.name, err)
			}
			c.subs[k] = struct{}{}
		}
		if !c.marked {
			// The first PONG answers the PING of dial, the second this one:
			// once it arrives every subscription sent before it is active.
			c.marked = true
			if err := c.ps.Ping(s.ctx); err != nil {
				_ = c.ps.Close()
				return err
			}
		}
	}
	return nil
}

// routeLocked returns the address of the connection k belongs on; "?" when
// unknown yet.
func (s *subscriber) routeLocked(k subKey) string {
	if s.cluster == nil || k.kind != subShard {
		return ""
	}
	if addr, ok := s.routes[k.name]; ok {
		return addr
	}
	return "?"
}

// dial opens a pub/sub connection: to client's node, or through the main
// client when client is nil.
func (s *subscriber) dial(addr string, client *redis.Client) (*subConn, error) {
	var ps *redis.PubSub
	if client != nil {
		ps = client.Subscribe(s.ctx)
	} else {
		ps = s.client.Subscribe(s.ctx)
	}
	ctx, cancel := context.WithTimeout(s.ctx, subDialTimeout)
	defer cancel()
	if err := ps.Ping(ctx); err != nil {
		_ = ps.Close()
		if addr != "" {
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	return &subConn{addr: addr, ps: ps, subs: make(map[subKey]struct{})}, nil
}

// read receives on c until it fails or the subscriber closes. A connection
// silent for subHealthCheck is PINGed; one that stays silent for another
// period is considered dead.
func (s *subscriber) read(c *subConn) {
	defer s.wg.Done()
	pinged := false
	for {
		msg, err := c.ps.ReceiveTimeout(s.ctx, subHealthCheck)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				if err := c.ps.Ping(s.ctx); err == nil {
					pinged = true
					continue
				}
			}
			s.drop(c, err)
			return
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			s.onMessage(m)
		case *redis.Pong:
			if c.pongs.Add(1) >= 2 && !c.live.Swap(true) {
				s.log.Debug("adapter: pub/sub connection live", "addr", c.addr)
				s.checkLive()
			}
		case *redis.Subscription:
			if m.Kind == "sunsubscribe" && s.cluster != nil && s.unsolicited(m.Channel) {
				s.drop(c, errSlotMoved)
				return
			}
		}
	}
}

// unsolicited reports whether a SUNSUBSCRIBE confirmation for ch was not
// asked for: Redis sends one when the slot of a shard channel moves.
func (s *subscriber) unsolicited(ch string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.unsub[ch]; n > 0 {
		if n == 1 {
			delete(s.unsub, ch)
		} else {
			s.unsub[ch] = n - 1
		}
		return false
	}
	return s.want[subKey{subShard, ch}] > 0
}

// drop forgets a failed connection and lets the supervisor make a new one.
func (s *subscriber) drop(c *subConn, err error) {
	s.log.Debug("adapter: pub/sub connection dropped", "addr", c.addr, "err", err)
	c.live.Store(false)
	_ = c.ps.Close()
	s.mu.Lock()
	if s.conns[c.addr] == c {
		delete(s.conns, c.addr)
	}
	s.mu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	s.fail(err)
	s.poke()
}

// checkLive clears the failure once every connection is live.
func (s *subscriber) checkLive() {
	s.mu.Lock()
	if s.lastErr == nil {
		s.mu.Unlock()
		return
	}
	for _, c := range s.conns {
		if !c.live.Load() {
			s.mu.Unlock()
			return
		}
	}
	s.lastErr = nil
	s.mu.Unlock()
	if s.onRecover != nil {
		s.onRecover()
	}
}
