package redispubsub

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

// Kind is a kind of Redis subscription.
type Kind uint8

const (
	Channel Kind = iota // SUBSCRIBE
	Pattern             // PSUBSCRIBE
	Shard               // SSUBSCRIBE
)

func (k Kind) String() string {
	return [...]string{"subscribe", "psubscribe", "ssubscribe"}[k]
}

// Key names one subscription: a channel, a pattern or a shard channel.
type Key struct {
	Kind Kind
	Name string
}

// ErrUnavailable is what Ready's errors wrap when Config.Unavailable is nil.
var ErrUnavailable = errors.New("redispubsub: redis unavailable")

// Reconnection and liveness timing.
const (
	minBackoff         = 20 * time.Millisecond
	maxBackoff         = 500 * time.Millisecond
	defaultHealthCheck = 3 * time.Second
	dialTimeout        = 5 * time.Second
	// subscribeBatch bounds the channels of one (S|P)SUBSCRIBE sent when a
	// connection is made; on a Cluster a shard channel goes alone.
	subscribeBatch = 512
)

var errSlotMoved = errors.New("shard channel moved to another node")

// Config configures a Subscriber.
type Config struct {
	// Client is the Redis client: a *redis.Client (standalone, or Sentinel
	// through redis.NewFailoverClient) or a *redis.ClusterClient. Required;
	// Close does not close it.
	Client redis.UniversalClient
	// OnMessage receives every message, on the reader of its connection.
	// Required.
	OnMessage func(*redis.Message)
	// OnSubscribed is told when Redis confirms a subscription: the first
	// time, and again after every reconnection. Optional.
	OnSubscribed func(Key)
	// OnFailure is told of every connection failure (for metrics and logs).
	// Optional.
	OnFailure func(error)
	// OnRecover is told when every connection is live again after a
	// failure. Optional.
	OnRecover func()
	// OnDial is told how long making and subscribing new connections took.
	// Optional.
	OnDial func(time.Duration)
	// Unavailable is the error Ready's errors wrap. Defaults to
	// ErrUnavailable.
	Unavailable error
	// HealthCheck is how long a connection may stay silent before it is
	// PINGed; silent for twice as long it is replaced. Defaults to 3s.
	HealthCheck time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Subscriber holds the pub/sub connections of one user of this package and
// re-establishes them after a failure.
type Subscriber struct {
	cfg     Config
	cluster *redis.ClusterClient // set on a Redis Cluster: shard channels per master
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	errNotSubscribed error
	errNotConfirmed  error

	mu      sync.Mutex
	want    map[Key]int      // wanted subscriptions, reference-counted
	conns   map[string]*conn // by master address; "" for the shared connection
	unsub   map[string]int   // SUNSUBSCRIBE confirmations still to come (cluster)
	lastErr error            // last failure, nil once everything is live again
	reload  bool             // reload the cluster's slot map before the next reconcile
	routes  map[string]string
}

type conn struct {
	addr string
	ps   *redis.PubSub
	// subs is what was sent on this connection, true once Redis confirmed
	// it (guarded by Subscriber.mu).
	subs    map[Key]bool
	marked  bool        // the PING that confirms the first subscriptions was sent (Subscriber.mu)
	retired atomic.Bool // closed because no longer needed: not a failure
	pongs   atomic.Int32
	live    atomic.Bool
}

// New returns a Subscriber and starts its supervisor. It makes no
// connection until a subscription needs one.
func New(cfg Config) *Subscriber {
	if cfg.Unavailable == nil {
		cfg.Unavailable = ErrUnavailable
	}
	if cfg.HealthCheck <= 0 {
		cfg.HealthCheck = defaultHealthCheck
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscriber{
		cfg:              cfg,
		log:              cfg.Logger,
		ctx:              ctx,
		cancel:           cancel,
		kick:             make(chan struct{}, 1),
		want:             make(map[Key]int),
		conns:            make(map[string]*conn),
		unsub:            make(map[string]int),
		routes:           make(map[string]string),
		errNotSubscribed: fmt.Errorf("%w: subscriptions not established yet", cfg.Unavailable),
		errNotConfirmed:  fmt.Errorf("%w: subscriptions not confirmed yet", cfg.Unavailable),
	}
	s.lastErr = s.errNotSubscribed
	if cc, ok := cfg.Client.(*redis.ClusterClient); ok {
		s.cluster = cc
	}
	s.wg.Add(1)
	go s.supervise()
	return s
}

func (s *Subscriber) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Close stops every goroutine and closes every connection.
func (s *Subscriber) Close() {
	s.cancel()
	s.mu.Lock()
	for addr, c := range s.conns {
		_ = c.ps.Close()
		delete(s.conns, addr)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Ready returns nil when every connection the subscriptions need is
// established and has confirmed them, an error wrapping Config.Unavailable
// otherwise.
func (s *Subscriber) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return fmt.Errorf("%w: closed", s.cfg.Unavailable)
	}
	if s.lastErr != nil {
		return s.lastErr
	}
	if s.cluster == nil {
		if len(s.want) > 0 && s.conns[""] == nil {
			return s.errNotSubscribed
		}
	} else {
		for k := range s.want {
			if s.connForLocked(k) == nil {
				return s.errNotSubscribed
			}
		}
	}
	for _, c := range s.conns {
		if !c.live.Load() {
			return s.errNotConfirmed
		}
	}
	return nil
}

// Add subscribes to k (once, however many callers want it). It sends the
// command when the connection k belongs on is up, and otherwise leaves it to
// the supervisor; it never waits for Redis to answer. It reports whether k
// was already subscribed and confirmed, in which case OnSubscribed is not
// told again for this call.
func (s *Subscriber) Add(k Key) (confirmed bool) {
	addr, routed := "", false
	if s.cluster != nil && k.Kind == Shard {
		// The slot's master, from go-redis' cached cluster state.
		if m, err := s.cluster.MasterForKey(s.ctx, k.Name); err == nil {
			addr, routed = m.Options().Addr, true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.want[k]++
	if s.want[k] > 1 {
		c := s.connForLocked(k)
		return c != nil && c.subs[k]
	}
	if routed {
		s.routes[k.Name] = addr
	}
	c := s.connForLocked(k)
	if c == nil {
		s.poke()
		return false
	}
	if err := subscribe(s.ctx, c.ps, k.Kind, k.Name); err != nil {
		_ = c.ps.Close() // its reader reports the failure; the supervisor rebuilds
		return false
	}
	c.subs[k] = false
	return false
}

// Remove drops one reference to k, unsubscribing with the last.
func (s *Subscriber) Remove(k Key) {
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
	if k.Kind == Shard {
		delete(s.routes, k.Name)
	}
	for _, c := range s.conns {
		if _, ok := c.subs[k]; ok {
			s.unsubscribeLocked(c, k)
			if len(c.subs) == 0 {
				s.poke() // the connection may no longer be needed
			}
		}
	}
}

func (s *Subscriber) unsubscribeLocked(c *conn, k Key) {
	delete(c.subs, k)
	if k.Kind == Shard && s.cluster != nil {
		s.unsub[k.Name]++
	}
	if err := unsubscribe(s.ctx, c.ps, k); err != nil {
		_ = c.ps.Close()
	}
}

// connForLocked returns the live connection k belongs on, nil when there is
// none yet (the supervisor makes it).
func (s *Subscriber) connForLocked(k Key) *conn {
	addr := s.routeLocked(k)
	if addr == "?" {
		return nil
	}
	return s.conns[addr]
}

// routeLocked returns the address of the connection k belongs on; "?" when
// unknown yet.
func (s *Subscriber) routeLocked(k Key) string {
	if s.cluster == nil || k.Kind != Shard {
		return ""
	}
	if addr, ok := s.routes[k.Name]; ok {
		return addr
	}
	return "?"
}

func subscribe(ctx context.Context, ps *redis.PubSub, kind Kind, names ...string) error {
	switch kind {
	case Pattern:
		return ps.PSubscribe(ctx, names...)
	case Shard:
		return ps.SSubscribe(ctx, names...)
	}
	return ps.Subscribe(ctx, names...)
}

func unsubscribe(ctx context.Context, ps *redis.PubSub, k Key) error {
	switch k.Kind {
	case Pattern:
		return ps.PUnsubscribe(ctx, k.Name)
	case Shard:
		return ps.SUnsubscribe(ctx, k.Name)
	}
	return ps.Unsubscribe(ctx, k.Name)
}

// supervise (re)establishes the connections: after a failure it backs off
// (100 ms doubling to 2 s) and tries again until it succeeds or Close.
func (s *Subscriber) supervise() {
	defer s.wg.Done()
	delay := minBackoff
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
			delay = min(2*delay, maxBackoff)
			continue
		}
		delay = minBackoff
		s.checkLive()
		select {
		case <-s.kick:
		case <-s.ctx.Done():
			return
		}
	}
}

// fail records a failure.
func (s *Subscriber) fail(err error) {
	s.mu.Lock()
	s.lastErr = fmt.Errorf("%w: %v", s.cfg.Unavailable, err)
	if s.cluster != nil {
		s.reload = true
	}
	s.mu.Unlock()
	if s.cfg.OnFailure != nil {
		s.cfg.OnFailure(err)
	}
}

// reconcile makes the connections and their subscriptions match what is
// wanted: a connection where a wanted subscription belongs, none elsewhere.
func (s *Subscriber) reconcile() error {
	need, err := s.needed()
	if err != nil {
		return err
	}

	// Connect where there is no connection yet.
	var dialed []*conn
	start := time.Now()
	defer func() {
		if len(dialed) > 0 && s.cfg.OnDial != nil {
			s.cfg.OnDial(time.Since(start))
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
		s.log.Debug("redis pub/sub connection established", "addr", addr)
		s.wg.Add(1)
		go s.read(c)
	}

	// Send what is missing, take back what moved or is no longer wanted,
	// close what is not needed.
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, c := range s.conns {
		if _, needed := need[addr]; !needed {
			c.retired.Store(true)
			clear(c.subs)
			_ = c.ps.Close()
			delete(s.conns, addr)
			continue
		}
		for k := range c.subs {
			if s.want[k] == 0 || s.routeLocked(k) != addr {
				s.unsubscribeLocked(c, k)
			}
		}
		if err := s.sendMissingLocked(c); err != nil {
			_ = c.ps.Close()
			return err
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

// needed returns the addresses that need a connection, each with the
// client to dial (nil: through the main client).
func (s *Subscriber) needed() (map[string]*redis.Client, error) {
	need := map[string]*redis.Client{}
	s.mu.Lock()
	reload := s.reload
	s.reload = false
	var shards []string
	for k := range s.want {
		if k.Kind == Shard && s.cluster != nil {
			shards = append(shards, k.Name)
		} else {
			need[""] = nil
		}
	}
	s.mu.Unlock()
	if s.cluster == nil || len(shards) == 0 {
		return need, nil
	}
	// Where each shard channel goes (talks to the cluster: no lock held).
	if reload {
		s.cluster.ReloadState(s.ctx)
	}
	routes := make(map[string]string, len(shards))
	for _, ch := range shards {
		m, err := s.cluster.MasterForKey(s.ctx, ch)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", ch, err)
		}
		addr := m.Options().Addr
		routes[ch] = addr
		need[addr] = m
	}
	s.mu.Lock()
	for ch, addr := range routes {
		if _, wanted := s.want[Key{Shard, ch}]; wanted {
			s.routes[ch] = addr
		}
	}
	s.mu.Unlock()
	return need, nil
}

// sendMissingLocked subscribes c to the wanted keys that belong on it and
// were not sent yet, in batches of one kind.
func (s *Subscriber) sendMissingLocked(c *conn) error {
	var missing [3][]string
	for k := range s.want {
		if _, ok := c.subs[k]; ok || s.routeLocked(k) != c.addr {
			continue
		}
		missing[k.Kind] = append(missing[k.Kind], k.Name)
	}
	for kind, names := range missing {
		batch := subscribeBatch
		if Kind(kind) == Shard && s.cluster != nil {
			batch = 1 // one SSUBSCRIBE may not span slots
		}
		for len(names) > 0 {
			n := min(batch, len(names))
			if err := subscribe(s.ctx, c.ps, Kind(kind), names[:n]...); err != nil {
				return fmt.Errorf("%s %q: %w", Kind(kind), names[0], err)
			}
			for _, name := range names[:n] {
				c.subs[Key{Kind(kind), name}] = false
			}
			names = names[n:]
		}
	}
	return nil
}

// dial opens a pub/sub connection: to client's node, or through the main
// client when client is nil.
func (s *Subscriber) dial(addr string, client *redis.Client) (*conn, error) {
	var ps *redis.PubSub
	if client != nil {
		ps = client.Subscribe(s.ctx)
	} else {
		ps = s.cfg.Client.Subscribe(s.ctx)
	}
	ctx, cancel := context.WithTimeout(s.ctx, dialTimeout)
	defer cancel()
	if err := ps.Ping(ctx); err != nil {
		_ = ps.Close()
		if addr != "" {
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	return &conn{addr: addr, ps: ps, subs: make(map[Key]bool)}, nil
}

// read receives on c until it fails or the Subscriber closes. A connection
// silent for HealthCheck is PINGed; one that stays silent for another
// period is considered dead.
func (s *Subscriber) read(c *conn) {
	defer s.wg.Done()
	pinged := false
	for {
		msg, err := c.ps.ReceiveTimeout(s.ctx, s.cfg.HealthCheck)
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
			s.cfg.OnMessage(m)
		case *redis.Pong:
			if c.pongs.Add(1) >= 2 && !c.live.Swap(true) {
				s.log.Debug("redis pub/sub connection live", "addr", c.addr)
				s.checkLive()
			}
		case *redis.Subscription:
			if !s.onSubscription(c, m) {
				return
			}
		}
	}
}

// onSubscription handles a confirmation; false when it ends c.
func (s *Subscriber) onSubscription(c *conn, m *redis.Subscription) bool {
	var kind Kind
	switch m.Kind {
	case "subscribe":
		kind = Channel
	case "psubscribe":
		kind = Pattern
	case "ssubscribe":
		kind = Shard
	case "sunsubscribe":
		if s.cluster != nil && s.unsolicited(m.Channel) {
			s.drop(c, errSlotMoved)
			return false
		}
		return true
	default:
		return true
	}
	k := Key{kind, m.Channel}
	s.mu.Lock()
	_, sent := c.subs[k]
	if sent {
		c.subs[k] = true
	}
	s.mu.Unlock()
	if sent && s.cfg.OnSubscribed != nil {
		s.cfg.OnSubscribed(k)
	}
	return true
}

// unsolicited reports whether a SUNSUBSCRIBE confirmation for ch was not
// asked for: Redis sends one when the slot of a shard channel moves.
func (s *Subscriber) unsolicited(ch string) bool {
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
	return s.want[Key{Shard, ch}] > 0
}

// drop forgets a failed connection and lets the supervisor make a new one.
func (s *Subscriber) drop(c *conn, err error) {
	s.log.Debug("redis pub/sub connection dropped", "addr", c.addr, "err", err)
	c.live.Store(false)
	_ = c.ps.Close()
	s.mu.Lock()
	if s.conns[c.addr] == c {
		delete(s.conns, c.addr)
	}
	s.mu.Unlock()
	if s.ctx.Err() != nil || c.retired.Load() {
		return
	}
	s.fail(err)
	s.poke()
}

// checkLive clears the failure once every connection is live.
func (s *Subscriber) checkLive() {
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
	if s.cfg.OnRecover != nil {
		s.cfg.OnRecover()
	}
}
