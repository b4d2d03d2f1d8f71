package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// fanoutConfig configures a fan-out run.
type fanoutConfig struct {
	// Targets are base URLs; subscribers and publishers are spread over them
	// round-robin.
	Targets []string
	// Subscribers join Room. Defaults to 1000.
	Subscribers int
	// Publishers publish to Room without joining it. Defaults to 2.
	Publishers int
	// Rooms spreads the subscribers over that many rooms, named Room-0,
	// Room-1...: subscriber i joins room (i / len(Targets)) mod Rooms, so
	// that every room has members on every target; each publisher rotates
	// over the rooms, one publish to each in turn. Defaults to 1: every
	// subscriber in Room itself.
	Rooms int
	// Rate is the target of deliveries per second (publishes/s × subscribers
	// per room); 0 runs at saturation: a closed loop keeping at most
	// Inflight publishes not yet delivered to every subscriber of their room.
	Rate float64
	// Inflight bounds, at saturation, the publishes whose deliveries are not
	// all in. Defaults to 16.
	Inflight int
	// MaxUnacked bounds the publishes per publisher waiting for their ack.
	// Defaults to 4096.
	MaxUnacked int
	// Room and Event name what is published. Default to "bench" and "m".
	Room, Event string
	// Warmup runs the load before measuring. Defaults to 2s.
	Warmup time.Duration
	// Duration is the measurement window. Defaults to 10s.
	Duration time.Duration
	// Drain bounds the wait for the deliveries of the window's last
	// publishes. Defaults to 3s.
	Drain time.Duration
	// SetupTimeout bounds opening every connection. Defaults to 60s.
	SetupTimeout time.Duration
	// HandshakeTimeout bounds one dial, CONNECT or join. Defaults to 10s.
	HandshakeTimeout time.Duration
	// ConnectConcurrency is how many connections are set up at once.
	// Defaults to 64.
	ConnectConcurrency int
	// Sources is the number of loopback source addresses per target.
	Sources int
	// Tokens mints the connections' JWTs.
	Tokens tokens
	// PIDs are server processes whose CPU time over the window is reported.
	PIDs []int
	// Protocol is the servers' wire protocol. Defaults to socketIO.
	Protocol protocol
	// APIKey authenticates publishes through an HTTP API (centrifugo).
	APIKey string
}

// orDefault sets *v to d when it is not positive.
func orDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

func (c *fanoutConfig) setDefaults() {
	orDefault(&c.Subscribers, 1000)
	orDefault(&c.Publishers, 2)
	orDefault(&c.Rooms, 1)
	orDefault(&c.Inflight, 16)
	orDefault(&c.MaxUnacked, 4096)
	orDefault(&c.ConnectConcurrency, 64)
	if c.Room == "" {
		c.Room = "bench"
	}
	if c.Event == "" {
		c.Event = "m"
	}
	orDefault(&c.Warmup, 2*time.Second)
	orDefault(&c.Duration, 10*time.Second)
	orDefault(&c.Drain, 3*time.Second)
	orDefault(&c.SetupTimeout, 60*time.Second)
	orDefault(&c.HandshakeTimeout, 10*time.Second)
	if c.Protocol == nil {
		c.Protocol = socketIO{}
	}
}

// fanoutResult is the JSON result of a fan-out run.
type fanoutResult struct {
	Mode        string   `json:"mode"`
	Targets     []string `json:"targets"`
	Subscribers int      `json:"subscribers"`
	Publishers  int      `json:"publishers"`
	// Rooms is the number of rooms the subscribers were spread over, when
	// more than one.
	Rooms int `json:"rooms,omitempty"`
	// TargetRate is the requested deliveries/s; 0 means saturation.
	TargetRate float64 `json:"target_rate"`
	Inflight   int     `json:"inflight,omitempty"`
	SetupS     float64 `json:"setup_s"`
	WarmupS    float64 `json:"warmup_s"`
	DurationS  float64 `json:"duration_s"`
	// Publishes were sent in the window; PublishesPerS is their rate.
	Publishes     int64            `json:"publishes"`
	PublishesPerS float64          `json:"publishes_per_s"`
	PublishErrors map[string]int64 `json:"publish_errors,omitempty"`
	// Expected is, over the Publishes without an error ack, the sum of
	// their room's subscribers (Subscribers × those publishes in one room).
	Expected int64 `json:"expected"`
	// Delivered counts deliveries of the window's publishes, including
	// those that arrived during the drain.
	Delivered     int64   `json:"delivered"`
	DeliveryRatio float64 `json:"delivery_ratio"`
	// DeliveriesPerS counts deliveries received during the window.
	DeliveriesPerS float64        `json:"deliveries_per_s"`
	Latency        latencySummary `json:"latency"`
	// Disconnects counts connections the server closed during the run.
	Disconnects int64 `json:"disconnects"`
	// Stalls counts closed-loop waits that gave up for lack of progress.
	Stalls int64 `json:"stalls,omitempty"`
	// Lag is how far, at most, a fixed-rate publisher fell behind schedule.
	LagMS float64 `json:"max_publisher_lag_ms,omitempty"`
	// CPU is the servers' (-pids) and loadgen's CPU time over the window.
	CPU *cpuUsage `json:"cpu,omitempty"`
}

// fanout is one fan-out run's shared state.
type fanout struct {
	cfg         fanoutConfig
	quotedRooms [][]byte
	quotedEvent []byte
	roomSubs    []int64   // subscribers of each room, as set up
	endpoints   []string  // websocket URL per target
	dialers     []*dialer // per target

	conns   connSet
	readers sync.WaitGroup // subscriber and publisher read loops
	writers sync.WaitGroup // publisher write loops
	stop    chan struct{}  // closed: publishers stop
	closing atomic.Bool    // set before conns are closed on purpose

	// Window bounds, Unix nanoseconds; MaxInt64 until measuring starts.
	winStart, winEnd atomic.Int64

	// Closed-loop accounting, in deliveries.
	owed      atomic.Int64 // Σ over sent publishes of their room's live subscribers then
	delivered atomic.Int64
	roomPubs  []atomic.Int64 // publishes sent, per room
	roomAlive []atomic.Int64 // live subscribers, per room
	alive     atomic.Int64   // live subscribers
	blocked   atomic.Int32   // publishers waiting for deliveries
	wake      chan struct{}
	maxOwed   int64

	disconnects atomic.Int64
	stalls      atomic.Int64

	subs []*subscriber
	pubz []*publisher
}

type subscriber struct {
	c    *conn
	room int
	// Owned by the read loop until readers.Wait returns.
	total  int64 // deliveries
	inWin  int64 // deliveries received inside the window
	ofWin  int64 // deliveries of publishes sent inside the window
	hist   histogram
	gone   bool
	reason error
}

type publisher struct {
	c *conn // nil when publishes do not go over a websocket
	// send publishes (id, t, seq) to f.quotedRooms[room]; only the write
	// loop calls it.
	send func(id uint64, room int, t, seq int64) error
	// done, when set, is called once the write loop has returned, or at
	// shutdown when it never started; it may be called more than once.
	done func()
	wake chan struct{} // ack progress
	sent atomic.Int64
	acks atomic.Int64
	// Owned by the write loop until writers.Wait returns.
	winPubs          int64
	winFirst, winEnd uint64 // ids [winFirst, winEnd) were sent inside the window
	maxLag           time.Duration
	sendErr          error
	// Owned by the read loop until readers.Wait returns.
	errIDs []uint64
	errs   map[string]int64
	gone   bool
}

// runFanout sets up the connections, publishes for Warmup+Duration, drains
// and returns the measurements. ctx bounds the whole run.
func runFanout(ctx context.Context, cfg fanoutConfig) (*fanoutResult, error) {
	cfg.setDefaults()
	if len(cfg.Targets) == 0 {
		return nil, fmt.Errorf("%w: fanout needs at least one target", errUsage)
	}
	f := &fanout{
		cfg:         cfg,
		quotedRooms: make([][]byte, cfg.Rooms),
		quotedEvent: appendJSONString(nil, cfg.Event),
		roomSubs:    make([]int64, cfg.Rooms),
		roomPubs:    make([]atomic.Int64, cfg.Rooms),
		roomAlive:   make([]atomic.Int64, cfg.Rooms),
		stop:        make(chan struct{}),
		wake:        make(chan struct{}, 1),
		// Inflight publishes to a room of average size.
		maxOwed: int64(cfg.Inflight) * ceilDiv(int64(cfg.Subscribers), int64(cfg.Rooms)),
	}
	for r := range cfg.Rooms {
		f.quotedRooms[r] = appendJSONString(nil, roomName(cfg.Room, cfg.Rooms, r))
	}
	for i := range cfg.Subscribers {
		f.roomSubs[subscriberRoom(i, len(cfg.Targets), cfg.Rooms)]++
	}
	f.winStart.Store(math.MaxInt64)
	f.winEnd.Store(math.MaxInt64)
	defer f.shutdown()

	f.endpoints = make([]string, len(cfg.Targets))
	f.dialers = make([]*dialer, len(cfg.Targets))
	for i, t := range cfg.Targets {
		var err error
		if f.endpoints[i], err = cfg.Protocol.endpoint(t); err != nil {
			return nil, err
		}
		src, err := sourceRange(t, cfg.Sources)
		if err != nil {
			return nil, err
		}
		f.dialers[i] = newDialer(src, cfg.HandshakeTimeout)
		defer f.dialers[i].close()
	}

	setupStart := time.Now()
	sctx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	defer cancel()
	f.subs = make([]*subscriber, cfg.Subscribers)
	failed, es := parallel(sctx, cfg.Subscribers, cfg.ConnectConcurrency, func(ctx context.Context, i int) error {
		c, err := f.open(ctx, i, "sub-"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		room := subscriberRoom(i, len(f.endpoints), cfg.Rooms)
		if err := cfg.Protocol.join(ctx, c, f.quotedRooms[room], cfg.HandshakeTimeout); err != nil {
			c.close()
			return err
		}
		s := &subscriber{c: c, room: room}
		f.subs[i] = s
		if !f.conns.add(c) {
			return errSetup
		}
		f.alive.Add(1)
		f.roomAlive[room].Add(1)
		f.readers.Add(1)
		go cfg.Protocol.subscriberLoop(f, s)
		return nil
	})
	if failed > 0 {
		return nil, fmt.Errorf("%w: %d of %d subscribers: %s", errSetup, failed, cfg.Subscribers, es.first())
	}
	f.pubz = make([]*publisher, cfg.Publishers)
	failed, es = parallel(sctx, cfg.Publishers, cfg.ConnectConcurrency, func(ctx context.Context, i int) error {
		p, err := cfg.Protocol.newPublisher(ctx, f, i)
		if err != nil {
			return err
		}
		f.pubz[i] = p
		return nil
	})
	if failed > 0 {
		return nil, fmt.Errorf("%w: %d of %d publishers: %s", errSetup, failed, cfg.Publishers, es.first())
	}
	setup := time.Since(setupStart)

	// Measure from Warmup after the first publish to Duration later.
	start := time.Now()
	ws := start.Add(cfg.Warmup)
	we := ws.Add(cfg.Duration)
	f.winStart.Store(ws.UnixNano())
	f.winEnd.Store(we.UnixNano())
	for i, p := range f.pubz {
		f.writers.Add(1)
		go f.publisherWriteLoop(ctx, p, i, start)
	}
	meter := cpuMeter{pids: cfg.PIDs}
	if !sleepCtx(ctx, time.Until(ws)) {
		return nil, fmt.Errorf("fanout interrupted: %w", context.Cause(ctx))
	}
	if err := meter.begin(); err != nil {
		return nil, err
	}
	if !sleepCtx(ctx, time.Until(we)) {
		return nil, fmt.Errorf("fanout interrupted: %w", context.Cause(ctx))
	}
	if err := meter.end(); err != nil {
		return nil, err
	}
	close(f.stop)
	if !waitGroupTimeout(&f.writers, 10*time.Second) {
		return nil, fmt.Errorf("fanout: publishers did not stop within 10s")
	}
	f.drain(ctx)

	f.closing.Store(true)
	f.conns.closeAll()
	if !waitGroupTimeout(&f.readers, 10*time.Second) {
		return nil, fmt.Errorf("fanout: read loops did not stop within 10s")
	}
	r := f.result(setup)
	r.CPU = meter.usage(int64(math.Round(r.DeliveriesPerS * cfg.Duration.Seconds())))
	return r, nil
}

// roomName is the name of room r of n: base itself when there is one.
func roomName(base string, n, r int) string {
	if n == 1 {
		return base
	}
	return base + "-" + strconv.Itoa(r)
}

// subscriberRoom is the room subscriber i of those spread round-robin over
// targets joins: round-robin over the rooms within each target, so that
// every room has members on every target.
func subscriberRoom(i, targets, rooms int) int { return (i / targets) % rooms }

// publishRoom is the room publisher idx sends its publish id (from 1) to:
// the publishers rotate over the rooms, each starting at its own.
func publishRoom(idx int, id uint64, rooms int) int {
	return int((uint64(idx) + id - 1) % uint64(rooms))
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// open dials connection i (to target i mod n), authenticates with a token
// for sub and returns the connection.
func (f *fanout) open(ctx context.Context, i int, sub string) (*conn, error) {
	tok, err := f.cfg.Protocol.token(f.cfg.Tokens, sub)
	if err != nil {
		return nil, err
	}
	ti := i % len(f.endpoints)
	return f.cfg.Protocol.open(ctx, f.dialers[ti], f.endpoints[ti], tok, f.cfg.HandshakeTimeout)
}

// drain waits until every publish sent has been delivered to every live
// subscriber, progress stops for a second, or Drain elapses.
func (f *fanout) drain(ctx context.Context) {
	deadline := time.Now().Add(f.cfg.Drain)
	last, lastChange := f.delivered.Load(), time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		d := f.delivered.Load()
		if d >= f.owed.Load() {
			return
		}
		if d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > time.Second {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// shutdown closes everything still open; safe after a normal end too.
func (f *fanout) shutdown() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.closing.Store(true)
	f.conns.closeAll()
	if waitGroupTimeout(&f.writers, 10*time.Second) {
		// Write loops that never started have not called done; no write
		// loop may be running when it is.
		for _, p := range f.pubz {
			if p != nil && p.done != nil {
				p.done()
			}
		}
	}
	waitGroupTimeout(&f.readers, 10*time.Second)
}

func (f *fanout) subscriberLoop(s *subscriber) {
	defer f.readers.Done()
	bg := context.Background()
	for {
		p, err := s.c.read(bg)
		if err != nil {
			f.lost(s, err)
			return
		}
		now := time.Now().UnixNano()
		d, ok := parseDelivery(p, f.quotedEvent)
		if !ok {
			if len(p) == 1 && p[0] == eioPing {
				if err := s.c.send(bg, pongFrame); err != nil {
					f.lost(s, err)
					return
				}
			} else if isGone(p) {
				f.lost(s, errClosed)
				return
			}
			continue
		}
		f.received(s, now, d)
	}
}

// received counts delivery d, read by subscriber s's loop at now (Unix
// nanoseconds).
func (f *fanout) received(s *subscriber, now int64, d delivery) {
	s.total++
	f.deliveredOne()
	if now >= f.winStart.Load() && now < f.winEnd.Load() {
		s.inWin++
	}
	if d.T >= f.winStart.Load() && d.T < f.winEnd.Load() {
		s.ofWin++
		s.hist.record(time.Duration(now - d.T))
	}
}

// lost records a subscriber whose connection ended; deliveries it was still
// owed are written off so the closed loop does not wait for them.
func (f *fanout) lost(s *subscriber, err error) {
	if f.closing.Load() {
		return
	}
	s.gone, s.reason = true, err
	f.disconnects.Add(1)
	f.alive.Add(-1)
	f.roomAlive[s.room].Add(-1)
	if owed := f.roomPubs[s.room].Load() - s.total; owed > 0 {
		f.delivered.Add(owed)
	}
	f.signal()
}

// deliveredOne counts a delivery and wakes a waiting publisher when there is
// room for another publish (to a room of average size: the publisher checks
// its own).
func (f *fanout) deliveredOne() {
	d := f.delivered.Add(1)
	if f.blocked.Load() > 0 && f.owed.Load()-d <= f.maxOwed-ceilDiv(f.alive.Load(), int64(f.cfg.Rooms)) {
		f.signal()
	}
}

func (f *fanout) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fanout) publisherReadLoop(p *publisher) {
	defer f.readers.Done()
	bg := context.Background()
	for {
		b, err := p.c.read(bg)
		if err != nil {
			if !f.closing.Load() {
				p.gone = true
				f.disconnects.Add(1)
			}
			return
		}
		if a, ok := parseAck(b); ok {
			p.acks.Add(1)
			if !a.OK {
				p.errs[a.Code]++
				if len(p.errIDs) < 1<<20 {
					p.errIDs = append(p.errIDs, a.ID)
				}
			}
			select {
			case p.wake <- struct{}{}:
			default:
			}
			continue
		}
		if len(b) == 1 && b[0] == eioPing {
			if err := p.c.send(bg, pongFrame); err != nil && !f.closing.Load() {
				p.gone = true
				f.disconnects.Add(1)
				return
			}
			continue
		}
		if isGone(b) && !f.closing.Load() {
			p.gone = true
			f.disconnects.Add(1)
			return
		}
	}
}

// publisherWriteLoop publishes until stop: paced at a fixed rate, or as fast
// as the closed loop allows.
func (f *fanout) publisherWriteLoop(ctx context.Context, p *publisher, idx int, start time.Time) {
	defer f.writers.Done()
	if p.done != nil {
		defer p.done()
	}
	cfg := f.cfg
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	wait := func(d time.Duration, ch <-chan struct{}) bool {
		timer.Reset(d)
		select {
		case <-f.stop:
			return false
		case <-ctx.Done():
			return false
		case <-ch:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		return true
	}

	var interval time.Duration
	next := start
	if cfg.Rate > 0 {
		perRoom := float64(cfg.Subscribers) / float64(cfg.Rooms)
		perPub := cfg.Rate / perRoom / float64(cfg.Publishers) // publishes/s
		interval = time.Duration(float64(time.Second) / perPub)
		next = start.Add(interval * time.Duration(idx) / time.Duration(cfg.Publishers)) // stagger
	}
	var id uint64
	var seq int64
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				if !wait(d, nil) {
					return
				}
			} else if lag := -d; lag > p.maxLag {
				p.maxLag = lag
			}
			next = next.Add(interval)
		} else {
			// Closed loop: room for one more publish's deliveries?
			lastProgress, lastD := time.Now(), f.delivered.Load()
			next := &f.roomAlive[publishRoom(idx, id+1, cfg.Rooms)]
			for f.owed.Load()-f.delivered.Load() > f.maxOwed-next.Load() {
				f.blocked.Add(1)
				ok := wait(time.Millisecond, f.wake)
				f.blocked.Add(-1)
				if !ok {
					return
				}
				if d := f.delivered.Load(); d != lastD {
					lastProgress, lastD = time.Now(), d
				} else if time.Since(lastProgress) > time.Second {
					f.stalls.Add(1)
					break
				}
			}
			f.signal() // pass the wake-up on to another waiting publisher
		}
		for p.sent.Load()-p.acks.Load() >= int64(cfg.MaxUnacked) {
			if !wait(time.Millisecond, p.wake) {
				return
			}
		}
		id++
		t := time.Now()
		tn := t.UnixNano()
		room := publishRoom(idx, id, cfg.Rooms)
		f.owed.Add(f.roomAlive[room].Load())
		f.roomPubs[room].Add(1)
		p.sent.Add(1)
		err := p.send(id, room, tn, seq)
		seq++
		if err != nil {
			if !f.closing.Load() {
				p.sendErr = err
			}
			return
		}
		if tn >= f.winStart.Load() && tn < f.winEnd.Load() {
			if p.winPubs == 0 {
				p.winFirst = id
			}
			p.winPubs++
			p.winEnd = id + 1
		}
	}
}

// result aggregates the per-connection statistics; call it after the read
// and write loops have returned.
func (f *fanout) result(setup time.Duration) *fanoutResult {
	cfg := f.cfg
	r := &fanoutResult{
		Mode:        "fanout",
		Targets:     cfg.Targets,
		Subscribers: cfg.Subscribers,
		Publishers:  cfg.Publishers,
		TargetRate:  cfg.Rate,
		SetupS:      round3(setup.Seconds()),
		WarmupS:     cfg.Warmup.Seconds(),
		DurationS:   cfg.Duration.Seconds(),
		Disconnects: f.disconnects.Load(),
		Stalls:      f.stalls.Load(),
	}
	if cfg.Rate == 0 {
		r.Inflight = cfg.Inflight
	}
	if cfg.Rooms > 1 {
		r.Rooms = cfg.Rooms
	}
	errs := map[string]int64{}
	var maxLag time.Duration
	for idx, p := range f.pubz {
		r.Publishes += p.winPubs
		if p.winPubs > 0 {
			for id := p.winFirst; id < p.winEnd; id++ {
				r.Expected += f.roomSubs[publishRoom(idx, id, cfg.Rooms)]
			}
		}
		for _, id := range p.errIDs {
			if id >= p.winFirst && id < p.winEnd {
				r.Expected -= f.roomSubs[publishRoom(idx, id, cfg.Rooms)]
			}
		}
		for k, v := range p.errs {
			errs[k] += v
		}
		if p.sendErr != nil {
			errs["send: "+p.sendErr.Error()]++
		}
		if p.maxLag > maxLag {
			maxLag = p.maxLag
		}
	}
	if len(errs) > 0 {
		r.PublishErrors = errs
	}
	var h histogram
	var inWin int64
	for _, s := range f.subs {
		r.Delivered += s.ofWin
		inWin += s.inWin
		h.merge(&s.hist)
	}
	dur := cfg.Duration.Seconds()
	if r.Expected > 0 {
		r.DeliveryRatio = math.Round(float64(r.Delivered)/float64(r.Expected)*1e6) / 1e6
	}
	r.PublishesPerS = round3(float64(r.Publishes) / dur)
	r.DeliveriesPerS = math.Round(float64(inWin) / dur)
	r.Latency = h.summary()
	if cfg.Rate > 0 {
		r.LagMS = round3(float64(maxLag) / float64(time.Millisecond))
	}
	return r
}
