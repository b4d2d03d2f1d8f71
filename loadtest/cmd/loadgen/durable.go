package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// durableConfig configures a durable-delivery run against Roomcast gateways:
// messages are appended to users' queues through POST /api/v1/emit and
// received by the users' sockets, each event carrying its entry ID (the
// socket's offset) as its last argument.
type durableConfig struct {
	// Targets are base URLs; subscribers are spread over them round-robin,
	// and publisher i posts to Targets[i % len(Targets)].
	Targets []string
	// APIToken is the gateway's --api-token.
	APIToken string
	// Subscribers is the number of users, one socket each, named
	// UserPrefix + "0" ... Defaults to 1000.
	Subscribers int
	// Publishers post emits concurrently, each waiting for its answer before
	// the next (a closed loop). Defaults to 8.
	Publishers int
	// Batch is the number of users one emit addresses (consecutive users,
	// round-robin over all of them). Defaults to 100, at most Subscribers.
	Batch int
	// UserPrefix prefixes the user names (JWT sub). Defaults to "u".
	UserPrefix string
	// Event is the event name emitted. Defaults to "m".
	Event string
	// Duration is how long publishers keep posting. Defaults to 10s.
	Duration time.Duration
	// Drain bounds the wait for the deliveries of the last emits after the
	// publishers stopped. Defaults to 5s.
	Drain time.Duration
	// Backlog is the number of messages appended to a fresh user and then
	// replayed to a new connection with auth.offset; 0 skips the replay.
	Backlog int
	// BacklogConcurrency is how many backlog appends are posted at once.
	// Defaults to 16.
	BacklogConcurrency int
	// RedisURL, when set, is the Redis the gateway stores its queues in:
	// the MEMORY USAGE of the replay user's stream (found by SCAN) is read
	// before and after the backlog. (The whole dataset's growth was read
	// before: other keys the gateway writes and expires meanwhile —
	// presence, sessions, the broadcast log's trim — made it noisy, even
	// negative.)
	RedisURL string
	// SetupTimeout bounds opening every subscriber. Defaults to 60s.
	SetupTimeout time.Duration
	// HandshakeTimeout bounds one dial or CONNECT. Defaults to 10s.
	HandshakeTimeout time.Duration
	// APITimeout bounds one API call. Defaults to 10s.
	APITimeout time.Duration
	// BacklogTimeout bounds appending the whole backlog. Defaults to 60s.
	BacklogTimeout time.Duration
	// ReplayTimeout bounds the replaying connection, from dial to the
	// CONNECT reply. Defaults to 60s.
	ReplayTimeout time.Duration
	// ConnectConcurrency is how many subscribers are set up at once.
	// Defaults to 64.
	ConnectConcurrency int
	// Sources is the number of loopback source addresses per target.
	Sources int
	// Tokens mints the sockets' JWTs (sub = the user).
	Tokens tokens
	// PIDs are server processes whose CPU time over the publishing window
	// is reported, per stored user-message.
	PIDs []int
}

func (c *durableConfig) setDefaults() {
	orDefault(&c.Subscribers, 1000)
	orDefault(&c.Publishers, 8)
	orDefault(&c.Batch, 100)
	if c.Batch > c.Subscribers {
		c.Batch = c.Subscribers
	}
	orDefault(&c.BacklogConcurrency, 16)
	orDefault(&c.ConnectConcurrency, 64)
	if c.UserPrefix == "" {
		c.UserPrefix = "u"
	}
	if c.Event == "" {
		c.Event = "m"
	}
	orDefault(&c.Duration, 10*time.Second)
	orDefault(&c.Drain, 5*time.Second)
	orDefault(&c.SetupTimeout, 60*time.Second)
	orDefault(&c.HandshakeTimeout, 10*time.Second)
	orDefault(&c.APITimeout, 10*time.Second)
	orDefault(&c.BacklogTimeout, 60*time.Second)
	orDefault(&c.ReplayTimeout, 60*time.Second)
}

// durableResult is the JSON result of a durable run.
type durableResult struct {
	Mode        string   `json:"mode"`
	Targets     []string `json:"targets"`
	Subscribers int      `json:"subscribers"`
	Publishers  int      `json:"publishers"`
	Batch       int      `json:"batch"`
	SetupS      float64  `json:"setup_s"`
	// DurationS is the publishing time: from the first emit to the answer
	// of the last one.
	DurationS float64 `json:"duration_s"`
	// APICalls counts emits posted; APIErrors counts those not answered
	// 200, by kind; Unconfirmed counts those with no answer at all (their
	// messages may or may not be stored).
	APICalls    int64            `json:"api_calls"`
	APIErrors   map[string]int64 `json:"api_errors,omitempty"`
	Unconfirmed int64            `json:"unconfirmed_calls,omitempty"`
	// Stored counts the user-messages stored: the entry IDs the API
	// returned (a 503 lists the users that do have the message).
	// StoredPerS is their rate; APINodes is the number of nodes the emits
	// went to, and StoredPerSPerNode is StoredPerS divided by it.
	Stored            int64   `json:"stored"`
	StoredPerS        float64 `json:"stored_per_s"`
	APINodes          int     `json:"api_nodes"`
	StoredPerSPerNode float64 `json:"stored_per_s_per_node"`
	// DeliveriesPerS counts the events the subscribers received during the
	// publishing time.
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	// Delivered counts every event received, including during the drain.
	Delivered int64 `json:"delivered"`
	// Lost counts stored IDs their user's socket never received, in
	// UsersWithLoss users. Unexpected counts received IDs the API never
	// returned (only possible after unconfirmed calls), Duplicates IDs
	// received twice, OutOfOrder events whose ID was not above the
	// previous one, BadFrames events without a readable offset.
	Lost          int64 `json:"lost"`
	UsersWithLoss int   `json:"users_with_loss,omitempty"`
	Unexpected    int64 `json:"unexpected,omitempty"`
	Duplicates    int64 `json:"duplicates,omitempty"`
	OutOfOrder    int64 `json:"out_of_order,omitempty"`
	BadFrames     int64 `json:"bad_frames,omitempty"`
	// Disconnects counts subscribers the server closed during the run.
	Disconnects int64 `json:"disconnects"`
	// StoreLatency is the API round trip of the emits answered 200;
	// DeliveryLatency is from the time in the args (taken just before the
	// emit was posted) to the subscriber's read.
	StoreLatency    latencySummary `json:"store_latency"`
	DeliveryLatency latencySummary `json:"delivery_latency"`
	// CPU is the servers' (-pids) and loadgen's CPU time over the
	// publishing time, per stored user-message.
	CPU    *cpuUsage     `json:"cpu,omitempty"`
	Replay *replayResult `json:"replay,omitempty"`
	Memory *memoryResult `json:"memory,omitempty"`
}

// replayResult measures one reconnect with a backlog.
type replayResult struct {
	Target string `json:"target"`
	User   string `json:"user"`
	// Marker is the entry ID of the message appended before the backlog:
	// the offset the replaying connection gives.
	Marker  string `json:"marker"`
	Backlog int    `json:"backlog"`
	// AppendS is the time appending the backlog took (Concurrency emits
	// at once); AppendsPerS its rate, AppendLatency the emits' round trip.
	AppendS       float64        `json:"append_s"`
	Concurrency   int            `json:"concurrency"`
	AppendsPerS   float64        `json:"appends_per_s"`
	AppendLatency latencySummary `json:"append_latency"`
	// Replayed counts the events received before the CONNECT reply; InOrder
	// is true when they were exactly the backlog's IDs, in increasing order.
	Replayed int  `json:"replayed"`
	InOrder  bool `json:"in_order"`
	// ReplayMS is from sending CONNECT (auth.offset = Marker) to the
	// CONNECT reply; ReplayPerS is Replayed over it.
	ReplayMS   float64 `json:"replay_ms"`
	ReplayPerS float64 `json:"replay_msgs_per_s"`
}

// memoryResult is the growth of the replay user's stream over the backlog.
type memoryResult struct {
	Key             string  `json:"key"`
	UsedBefore      int64   `json:"used_memory_before"`
	UsedAfter       int64   `json:"used_memory_after"`
	Messages        int     `json:"messages"`
	BytesPerMessage float64 `json:"bytes_per_message"`
}

// entryID is a parsed stream entry ID "<ms>-<seq>".
type entryID struct{ ms, seq uint64 }

func (a entryID) less(b entryID) bool { return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq) }

func (a entryID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

func compareIDs(a, b entryID) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

// parseEntryID reads "<ms>-<seq>".
func parseEntryID(s []byte) (entryID, bool) {
	i := bytes.IndexByte(s, '-')
	if i <= 0 {
		return entryID{}, false
	}
	ms, next, ok := scanUint(s, 0)
	if !ok || next != i {
		return entryID{}, false
	}
	seq, next, ok := scanUint(s, i+1)
	if !ok || next != len(s) {
		return entryID{}, false
	}
	return entryID{ms, seq}, true
}

// parseOffsetTail reads the offset a durable event carries as its last
// argument: the frame ends with `,"<ms>-<seq>"]`.
func parseOffsetTail(p []byte) (entryID, bool) {
	n := len(p)
	if n < 6 || p[n-1] != ']' || p[n-2] != '"' {
		return entryID{}, false
	}
	j := n - 3
	for j >= 0 && (p[j] >= '0' && p[j] <= '9' || p[j] == '-' || p[j] == '~') {
		j--
	}
	// "<user stream ID>~<broadcast log position>": the user part.
	if k := bytes.IndexByte(p[j+1:n-2], '~'); k >= 0 {
		n = j + 1 + k + 2
	}
	if j < 1 || p[j] != '"' || p[j-1] != ',' {
		return entryID{}, false
	}
	return parseEntryID(p[j+1 : n-2])
}

// appendEmit appends the body of an emit to users (already JSON-quoted)
// whose one argument is {"t":t,"seq":seq}.
func appendEmit(b []byte, quotedUsers [][]byte, quotedEvent []byte, t, seq int64) []byte {
	b = append(b, `{"users":[`...)
	for i, u := range quotedUsers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, u...)
	}
	b = append(b, `],"event":`...)
	b = append(b, quotedEvent...)
	b = append(b, `,"args":[{"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, `}]}`...)
}

// appendConnectOffset appends a CONNECT to "/" with auth
// {"token":token,"offset":offset} (no token when it is empty).
func appendConnectOffset(b []byte, token, offset string) []byte {
	b = append(b, eioMessage, sioConnect, '{')
	if token != "" {
		b = append(b, `"token":`...)
		b = appendJSONString(b, token)
		b = append(b, ',')
	}
	b = append(b, `"offset":`...)
	b = appendJSONString(b, offset)
	return append(b, '}')
}

// apiClient posts emits to the HTTP API.
type apiClient struct {
	hc      *http.Client
	token   string
	timeout time.Duration
}

func newAPIClient(token string, conns int, timeout time.Duration) *apiClient {
	return &apiClient{
		hc: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		}},
		token:   token,
		timeout: timeout,
	}
}

func (a *apiClient) close() { a.hc.CloseIdleConnections() }

// errAPIStatus reports an emit answered with another status than 200: the
// server answered, so the users it lists are exactly those that have it.
var errAPIStatus = errors.New("loadgen: API error")

// emit posts body and returns the users' entry IDs. On a non-200 answer it
// returns the IDs the answer lists (a 503 names the users that have the
// message) and an error wrapping errAPIStatus; any other error means the
// outcome is unknown.
func (a *apiClient) emit(ctx context.Context, endpoint string, body []byte) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	var r struct {
		OK    bool              `json:"ok"`
		IDs   map[string]string `json:"ids"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%w: status %d: %s", errAPIStatus, resp.StatusCode, clip(b))
		}
		return nil, fmt.Errorf("%w: unreadable answer: %v", errFrame, err)
	}
	if resp.StatusCode != http.StatusOK || !r.OK {
		return r.IDs, fmt.Errorf("%w: status %d %s", errAPIStatus, resp.StatusCode, r.Error.Code)
	}
	return r.IDs, nil
}

// durable is one durable run's shared state.
type durable struct {
	cfg         durableConfig
	quotedEvent []byte
	users       []string
	quotedUsers [][]byte
	userIndex   map[string]int
	api         *apiClient

	conns   connSet
	readers sync.WaitGroup
	closing atomic.Bool

	next        atomic.Int64 // batches started
	stored      atomic.Int64 // user-messages stored so far
	delivered   atomic.Int64 // events received so far
	disconnects atomic.Int64

	subs []*durableSub
	pubs []*durablePub
}

type durableSub struct {
	c *conn
	// Owned by the read loop until readers.Wait returns.
	got        []entryID // IDs received, in arrival order
	last       entryID
	outOfOrder int64
	badFrames  int64
	hist       histogram
}

type durablePub struct {
	endpoint string
	// Owned by the publisher goroutine until it returns.
	stored      [][]entryID // per user index
	calls       int64
	unconfirmed int64
	errs        errorSample
	hist        histogram
}

// runDurable measures durable throughput with live subscribers, then (with
// Backlog > 0) a reconnect's replay of a backlog and Redis memory per
// queued message. ctx bounds the whole run.
func runDurable(ctx context.Context, cfg durableConfig) (*durableResult, error) {
	cfg.setDefaults()
	if len(cfg.Targets) == 0 {
		return nil, fmt.Errorf("%w: durable needs at least one target", errUsage)
	}
	if cfg.APIToken == "" {
		return nil, fmt.Errorf("%w: durable needs -api-token (the gateway's --api-token)", errUsage)
	}
	d := &durable{
		cfg:         cfg,
		quotedEvent: appendJSONString(nil, cfg.Event),
		users:       make([]string, cfg.Subscribers),
		quotedUsers: make([][]byte, cfg.Subscribers),
		userIndex:   make(map[string]int, cfg.Subscribers),
		api:         newAPIClient(cfg.APIToken, cfg.Publishers+cfg.BacklogConcurrency, cfg.APITimeout),
	}
	defer d.api.close()
	defer d.shutdown()
	for i := range d.users {
		d.users[i] = cfg.UserPrefix + strconv.Itoa(i)
		d.quotedUsers[i] = appendJSONString(nil, d.users[i])
		d.userIndex[d.users[i]] = i
	}
	endpoints := make([]string, len(cfg.Targets))
	apis := make([]string, len(cfg.Targets))
	dialers := make([]*dialer, len(cfg.Targets))
	for i, t := range cfg.Targets {
		var err error
		if endpoints[i], err = wsURL(t); err != nil {
			return nil, err
		}
		if apis[i], err = apiURL(t); err != nil {
			return nil, err
		}
		src, err := sourceRange(t, cfg.Sources)
		if err != nil {
			return nil, err
		}
		dialers[i] = newDialer(src, cfg.HandshakeTimeout)
		defer dialers[i].close()
	}

	// Subscribers: one socket per user, spread over the targets.
	setupStart := time.Now()
	sctx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	defer cancel()
	d.subs = make([]*durableSub, cfg.Subscribers)
	failed, es := parallel(sctx, cfg.Subscribers, cfg.ConnectConcurrency, func(ctx context.Context, i int) error {
		ti := i % len(endpoints)
		tok, err := cfg.Tokens.mint(d.users[i])
		if err != nil {
			return err
		}
		c, err := dialers[ti].dial(ctx, endpoints[ti])
		if err != nil {
			return err
		}
		if err := c.connect(ctx, tok, cfg.HandshakeTimeout); err != nil {
			c.close()
			return err
		}
		s := &durableSub{c: c}
		d.subs[i] = s
		if !d.conns.add(c) {
			return errSetup
		}
		d.readers.Add(1)
		go d.subscriberLoop(s)
		return nil
	})
	if failed > 0 {
		return nil, fmt.Errorf("%w: %d of %d subscribers: %s", errSetup, failed, cfg.Subscribers, es.first())
	}
	setup := time.Since(setupStart)

	// Publishers: a closed loop each, for Duration.
	d.pubs = make([]*durablePub, cfg.Publishers)
	for i := range d.pubs {
		d.pubs[i] = &durablePub{endpoint: apis[i%len(apis)], stored: make([][]entryID, cfg.Subscribers)}
	}
	meter := cpuMeter{pids: cfg.PIDs}
	if err := meter.begin(); err != nil {
		return nil, err
	}
	start := time.Now()
	stopAt := start.Add(cfg.Duration)
	var pwg sync.WaitGroup
	for _, p := range d.pubs {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			d.publish(ctx, p, stopAt)
		}()
	}
	pwg.Wait() // each call is bounded by APITimeout, each loop by stopAt
	pubEnd := time.Now()
	deliveredInWindow := d.delivered.Load()
	if err := meter.end(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("durable interrupted: %w", context.Cause(ctx))
	}
	d.drain(ctx)
	d.closing.Store(true)
	d.conns.closeAll()
	if !waitGroupTimeout(&d.readers, 10*time.Second) {
		return nil, errors.New("durable: read loops did not stop within 10s")
	}

	r := d.result(setup, pubEnd.Sub(start), deliveredInWindow)
	r.CPU = meter.usage(r.Stored)
	var errs []error
	if r.Stored == 0 {
		errs = append(errs, fmt.Errorf("nothing was stored in %v: %s", cfg.Duration, firstKey(r.APIErrors)))
	}
	if r.Lost > 0 || r.Unexpected > 0 || r.Duplicates > 0 || r.OutOfOrder > 0 || r.BadFrames > 0 {
		errs = append(errs, fmt.Errorf("delivery check failed: %d of %d stored messages lost (%d users), %d unexpected, %d duplicates, %d out of order, %d bad frames",
			r.Lost, r.Stored, r.UsersWithLoss, r.Unexpected, r.Duplicates, r.OutOfOrder, r.BadFrames))
	}
	if r.Disconnects > 0 {
		errs = append(errs, fmt.Errorf("%d subscribers were disconnected by the server", r.Disconnects))
	}

	if cfg.Backlog > 0 {
		rep, mem, err := d.replay(ctx, dialers[0], endpoints[0], apis[0])
		r.Replay, r.Memory = rep, mem
		if err != nil {
			errs = append(errs, err)
		}
	}
	return r, errors.Join(errs...)
}

func firstKey(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		return "no API error"
	}
	return keys[0]
}

// publish posts emits to consecutive batches of users until stopAt.
func (d *durable) publish(ctx context.Context, p *durablePub, stopAt time.Time) {
	cfg := d.cfg
	n := int64(cfg.Subscribers)
	batch := make([][]byte, cfg.Batch)
	size := 64 + len(d.quotedEvent)
	for _, u := range d.quotedUsers[:cfg.Batch] {
		size += len(u) + 4
	}
	for ctx.Err() == nil && time.Now().Before(stopAt) {
		k := d.next.Add(1) - 1
		first := k * int64(cfg.Batch) % n
		for j := range batch {
			batch[j] = d.quotedUsers[(first+int64(j))%n]
		}
		t := time.Now()
		// A fresh body each call: the transport may still hold the last one.
		body := appendEmit(make([]byte, 0, size), batch, d.quotedEvent, t.UnixNano(), k)
		ids, err := d.api.emit(ctx, p.endpoint, body)
		rtt := time.Since(t)
		p.calls++
		switch {
		case err == nil:
			p.hist.record(rtt)
		case errors.Is(err, errAPIStatus):
			p.errs.add(err)
		default:
			if ctx.Err() != nil {
				return
			}
			p.unconfirmed++
			p.errs.add(err)
		}
		for u, id := range ids {
			i, ok := d.userIndex[u]
			eid, ok2 := parseEntryID([]byte(id))
			if !ok || !ok2 {
				p.errs.add(fmt.Errorf("%w: answer lists user %q with id %q", errFrame, u, id))
				continue
			}
			p.stored[i] = append(p.stored[i], eid)
			d.stored.Add(1)
		}
	}
}

func (d *durable) subscriberLoop(s *durableSub) {
	defer d.readers.Done()
	bg := context.Background()
	for {
		p, err := s.c.read(bg)
		if err != nil {
			d.lost()
			return
		}
		now := time.Now().UnixNano()
		dv, ok := parseDelivery(p, d.quotedEvent)
		if !ok {
			if len(p) == 1 && p[0] == eioPing {
				if err := s.c.send(bg, pongFrame); err != nil {
					d.lost()
					return
				}
			} else if isGone(p) {
				d.lost()
				return
			}
			continue
		}
		id, ok := parseOffsetTail(p)
		if !ok {
			s.badFrames++
			continue
		}
		if len(s.got) > 0 && !s.last.less(id) {
			s.outOfOrder++
		}
		s.last = id
		s.got = append(s.got, id)
		s.hist.record(time.Duration(now - dv.T))
		d.delivered.Add(1)
	}
}

func (d *durable) lost() {
	if !d.closing.Load() {
		d.disconnects.Add(1)
	}
}

// drain waits until as many events were received as user-messages were
// stored, progress stops for a second, or Drain elapses.
func (d *durable) drain(ctx context.Context) {
	deadline := time.Now().Add(d.cfg.Drain)
	last, lastChange := d.delivered.Load(), time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		n := d.delivered.Load()
		if n >= d.stored.Load() {
			return
		}
		if n != last {
			last, lastChange = n, time.Now()
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

func (d *durable) shutdown() {
	d.closing.Store(true)
	d.conns.closeAll()
	waitGroupTimeout(&d.readers, 10*time.Second)
}

// result aggregates the publishers' and subscribers' figures and checks,
// user by user, that every stored ID was received exactly once.
func (d *durable) result(setup, elapsed time.Duration, deliveredInWindow int64) *durableResult {
	cfg := d.cfg
	r := &durableResult{
		Mode:        "durable",
		Targets:     cfg.Targets,
		Subscribers: cfg.Subscribers,
		Publishers:  cfg.Publishers,
		Batch:       cfg.Batch,
		SetupS:      round3(setup.Seconds()),
		DurationS:   round3(elapsed.Seconds()),
		APINodes:    min(cfg.Publishers, len(cfg.Targets)),
		Disconnects: d.disconnects.Load(),
	}
	var storeHist, delHist histogram
	errs := map[string]int64{}
	for _, p := range d.pubs {
		r.APICalls += p.calls
		r.Unconfirmed += p.unconfirmed
		for k, v := range p.errs.snapshot() {
			errs[k] += v
		}
		storeHist.merge(&p.hist)
	}
	if len(errs) > 0 {
		r.APIErrors = errs
	}
	for i, s := range d.subs {
		r.Delivered += int64(len(s.got))
		r.OutOfOrder += s.outOfOrder
		r.BadFrames += s.badFrames
		delHist.merge(&s.hist)
		var want []entryID
		for _, p := range d.pubs {
			want = append(want, p.stored[i]...)
		}
		r.Stored += int64(len(want))
		lost, unexpected, dups := compareSets(want, s.got)
		r.Lost += lost
		r.Unexpected += unexpected
		r.Duplicates += dups
		if lost > 0 {
			r.UsersWithLoss++
		}
	}
	if sec := elapsed.Seconds(); sec > 0 {
		r.StoredPerS = math.Round(float64(r.Stored) / sec)
		r.StoredPerSPerNode = math.Round(r.StoredPerS / float64(r.APINodes))
		r.DeliveriesPerS = math.Round(float64(deliveredInWindow) / sec)
	}
	r.StoreLatency = storeHist.summary()
	r.DeliveryLatency = delHist.summary()
	return r
}

// compareSets compares the IDs stored for a user with those its socket
// received: lost are stored but never received, unexpected received but
// never stored, dups received more than once. Both slices are sorted in
// place.
func compareSets(want, got []entryID) (lost, unexpected, dups int64) {
	slices.SortFunc(want, compareIDs)
	slices.SortFunc(got, compareIDs)
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		if j > 0 && j < len(got) && got[j] == got[j-1] {
			dups++
			j++
			continue
		}
		switch {
		case j == len(got) || (i < len(want) && want[i].less(got[j])):
			lost++
			i++
		case i == len(want) || got[j].less(want[i]):
			unexpected++
			j++
		default:
			i++
			j++
		}
	}
	return lost, unexpected, dups
}

// replay appends a marker and a backlog to a fresh user through endpoint
// api, then times a new connection with auth.offset = the marker until its
// CONNECT reply, checking that exactly the backlog came before it, in order.
func (d *durable) replay(ctx context.Context, dl *dialer, endpoint, api string) (*replayResult, *memoryResult, error) {
	cfg := d.cfg
	user := cfg.UserPrefix + "replay-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	quotedUser := [][]byte{appendJSONString(nil, user)}
	r := &replayResult{Target: cfg.Targets[0], User: user, Backlog: cfg.Backlog, Concurrency: cfg.BacklogConcurrency}
	appendOne := func(ctx context.Context, seq int64) (entryID, error) {
		body := appendEmit(nil, quotedUser, d.quotedEvent, time.Now().UnixNano(), seq)
		ids, err := d.api.emit(ctx, api, body)
		if err != nil {
			return entryID{}, err
		}
		id, ok := parseEntryID([]byte(ids[user]))
		if !ok {
			return entryID{}, fmt.Errorf("%w: answer without an id for %q: %v", errFrame, user, ids)
		}
		return id, nil
	}
	marker, err := appendOne(ctx, -1)
	if err != nil {
		return r, nil, fmt.Errorf("replay: appending the marker: %w", err)
	}
	r.Marker = marker.String()

	var rdb *redis.Client
	var mem *memoryResult
	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return r, nil, fmt.Errorf("%w: -redis-url: %v", errUsage, err)
		}
		rdb = redis.NewClient(opts)
		defer rdb.Close()
		key, err := streamKeyOf(ctx, rdb, user)
		if err != nil {
			return r, nil, err
		}
		before, err := memoryUsage(ctx, rdb, key)
		if err != nil {
			return r, nil, err
		}
		mem = &memoryResult{Key: key, UsedBefore: before, Messages: cfg.Backlog}
	}

	ids := make([]entryID, cfg.Backlog)
	var (
		mu   sync.Mutex
		hist histogram
	)
	bctx, cancel := context.WithTimeout(ctx, cfg.BacklogTimeout)
	defer cancel()
	t0 := time.Now()
	failed, es := parallel(bctx, cfg.Backlog, cfg.BacklogConcurrency, func(ctx context.Context, i int) error {
		t := time.Now()
		id, err := appendOne(ctx, int64(i))
		if err != nil {
			return err
		}
		rtt := time.Since(t)
		ids[i] = id
		mu.Lock()
		hist.record(rtt)
		mu.Unlock()
		return nil
	})
	appendTime := time.Since(t0)
	r.AppendS = round3(appendTime.Seconds())
	r.AppendsPerS = math.Round(float64(cfg.Backlog-failed) / appendTime.Seconds())
	r.AppendLatency = hist.summary()
	if failed > 0 {
		return r, mem, fmt.Errorf("replay: %d of %d backlog appends failed: %s", failed, cfg.Backlog, es.first())
	}
	if rdb != nil {
		after, err := memoryUsage(ctx, rdb, mem.Key)
		if err != nil {
			return r, mem, err
		}
		mem.UsedAfter = after
		mem.BytesPerMessage = round3(float64(after-mem.UsedBefore) / float64(cfg.Backlog))
	}

	slices.SortFunc(ids, compareIDs)
	tok, err := cfg.Tokens.mint(user)
	if err != nil {
		return r, mem, err
	}
	rctx, rcancel := context.WithTimeout(ctx, cfg.ReplayTimeout)
	defer rcancel()
	c, err := dl.dial(rctx, endpoint)
	if err != nil {
		return r, mem, fmt.Errorf("replay: dial: %w", err)
	}
	defer c.close()
	inOrder := true
	start := time.Now()
	if err := c.send(rctx, appendConnectOffset(nil, tok, r.Marker)); err != nil {
		return r, mem, fmt.Errorf("replay: send CONNECT: %w", err)
	}
	for {
		p, err := c.read(rctx)
		if err != nil {
			return r, mem, fmt.Errorf("replay: after %d of %d messages: %w", r.Replayed, cfg.Backlog, err)
		}
		if _, ok := parseDelivery(p, d.quotedEvent); ok {
			id, ok := parseOffsetTail(p)
			if !ok || r.Replayed >= len(ids) || id != ids[r.Replayed] {
				inOrder = false
			}
			r.Replayed++
			continue
		}
		if len(p) == 1 && p[0] == eioPing {
			if err := c.send(rctx, pongFrame); err != nil {
				return r, mem, err
			}
			continue
		}
		kind, msg := parseConnectReply(p)
		if kind == replyRefused {
			return r, mem, fmt.Errorf("replay: %w: %s", errConnectRefused, msg)
		}
		if kind == replyOK {
			break
		}
		if isGone(p) {
			return r, mem, fmt.Errorf("replay: after %d of %d messages: %w", r.Replayed, cfg.Backlog, errClosed)
		}
	}
	elapsed := time.Since(start)
	r.ReplayMS = round3(float64(elapsed) / float64(time.Millisecond))
	r.ReplayPerS = math.Round(float64(r.Replayed) / elapsed.Seconds())
	r.InOrder = inOrder && r.Replayed == cfg.Backlog
	switch {
	case r.Replayed == 0:
		return r, mem, fmt.Errorf("replay: no message before the CONNECT reply, %d expected (offset %s expired? the gateway's --queue-maxlen must exceed the backlog)", cfg.Backlog, r.Marker)
	case r.Replayed != cfg.Backlog:
		return r, mem, fmt.Errorf("replay: %d messages before the CONNECT reply, want exactly %d", r.Replayed, cfg.Backlog)
	case !r.InOrder:
		return r, mem, fmt.Errorf("replay: the %d messages were not the backlog's IDs in increasing order", r.Replayed)
	}
	return r, mem, nil
}

// streamKeyOf finds the queue stream of user (<prefix>:stream:{user}, the
// prefix being the gateway's): the marker appended before the backlog made
// it.
func streamKeyOf(ctx context.Context, c *redis.Client, user string) (string, error) {
	pattern := "*:stream:{" + user + "}"
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return "", fmt.Errorf("redis SCAN %s: %w", pattern, err)
		}
		if len(keys) > 0 {
			return keys[0], nil
		}
		if cursor = next; cursor == 0 {
			return "", fmt.Errorf("redis: no key matches %s (is -redis-url the gateway's Redis?)", pattern)
		}
	}
}

// memoryUsage is MEMORY USAGE of key, every element counted (SAMPLES 0).
func memoryUsage(ctx context.Context, c *redis.Client, key string) (int64, error) {
	n, err := c.MemoryUsage(ctx, key, 0).Result()
	if err != nil {
		return 0, fmt.Errorf("redis MEMORY USAGE %s: %w", key, err)
	}
	return n, nil
}
