package gateway

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// lifecycleGroup is the consumer group of the lifecycle hook on the event
// stream; each node reads as the consumer named by its node id.
const lifecycleGroup = "roomcast:lifecycle-hook"

// lifecycleBlock bounds one blocking read, so the dispatcher notices its
// stop and its claim ticks.
const lifecycleBlock = time.Second

// redisLifecycleSource is the lifecycle hook's source with Redis: the
// event stream <prefix>:events through the consumer group
// roomcast:lifecycle-hook (created at the stream's end the first time any
// node starts with --lifecycle-hook). A node reads new entries
// (XREADGROUP >), first those it had read and not acknowledged in a
// previous run (XREADGROUP 0), acknowledges a batch (XACK) after a 2xx,
// and claims the entries any node left unacknowledged for longer than
// --lifecycle-hook-claim-idle (XAUTOCLAIM) — a node that died with a batch
// pending, or whose acknowledgement failed. A node retrying a batch resets
// its entries' idle time (XCLAIM JUSTID) so that no other node takes them
// while it is alive. Entries trimmed from the stream (--events-maxlen)
// before their delivery are counted as dropped.
type redisLifecycleSource struct {
	g        *Gateway
	rdb      redis.UniversalClient
	stream   string
	consumer string
	idle     time.Duration
	m        *lifecycleMetrics

	own       bool      // still reading this consumer's own pending entries (XREADGROUP 0)
	claimAt   time.Time // the next XAUTOCLAIM
	cursor    string    // XAUTOCLAIM's cursor
	gaugeAt   time.Time // the next pending gauge update
	recreated bool      // the group was created again after NOGROUP
}

var _ lifecycleSource = (*redisLifecycleSource)(nil)

func newRedisLifecycleSource(g *Gateway, m *lifecycleMetrics) (*redisLifecycleSource, error) {
	s := &redisLifecycleSource{
		g: g, rdb: g.rdb, stream: g.cfg.RedisPrefix + ":events", consumer: g.cfg.NodeID,
		idle: g.cfg.LifecycleHookClaimIdle, m: m, own: true, cursor: "0-0",
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RedisConnectTimeout)
	defer cancel()
	if err := s.createGroup(ctx, "$"); err != nil {
		return nil, err
	}
	return s, nil
}

// createGroup creates the group at start ("$": the events from now on;
// "0": all, after the group was lost with Redis's data), unless it exists.
func (s *redisLifecycleSource) createGroup(ctx context.Context, start string) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.stream, lifecycleGroup, start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	return nil
}

func (s *redisLifecycleSource) next(ctx context.Context, max int) (lifecycleBatch, error) {
	now := time.Now()
	if !now.Before(s.gaugeAt) {
		s.gaugeAt = now.Add(5 * time.Second)
		if n, ok := s.pending(ctx); ok {
			s.m.pending.Set(float64(n))
		}
	}
	if !now.Before(s.claimAt) {
		msgs, cursor, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: s.stream, Group: lifecycleGroup, Consumer: s.consumer,
			MinIdle: s.idle, Start: s.cursor, Count: int64(max),
		}).Result()
		if err != nil {
			return lifecycleBatch{}, s.readError(ctx, err)
		}
		s.cursor = cursor
		if cursor == "0-0" {
			s.claimAt = now.Add(s.idle / 4) // the whole list was walked: next walk later
		}
		if len(msgs) > 0 {
			s.g.log.Info("roomcast gateway: lifecycle hook: claimed events left pending", "events", len(msgs))
			return s.batch(msgs), nil
		}
	}
	id, block := ">", min(lifecycleBlock, time.Until(s.claimAt))
	if s.own {
		id, block = "0", -1
	}
	if block < time.Millisecond && !s.own {
		block = time.Millisecond // BLOCK 0 would wait for ever
	}
	res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: lifecycleGroup, Consumer: s.consumer, Streams: []string{s.stream, id}, Count: int64(max), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		s.own = false
		return lifecycleBatch{}, nil
	}
	if err != nil {
		return lifecycleBatch{}, s.readError(ctx, err)
	}
	var msgs []redis.XMessage
	for _, st := range res {
		msgs = append(msgs, st.Messages...)
	}
	if s.own && len(msgs) == 0 {
		s.own = false // this consumer's leftovers are done: new entries from now
	}
	return s.batch(msgs), nil
}

// readError recreates the group when it is gone (Redis lost its data) and
// returns err.
func (s *redisLifecycleSource) readError(ctx context.Context, err error) error {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		if cerr := s.createGroup(ctx, "0"); cerr == nil {
			s.own, s.cursor = true, "0-0"
			if !s.recreated {
				s.recreated = true
				s.g.log.Warn("roomcast gateway: lifecycle hook: consumer group was gone; created it again", "stream", s.stream)
			}
		}
	}
	return err
}

// batch turns entries into events; entries without a readable event (one
// trimmed from the stream while pending, a foreign entry) are
// acknowledged with the batch and counted as dropped.
func (s *redisLifecycleSource) batch(msgs []redis.XMessage) lifecycleBatch {
	b := lifecycleBatch{entries: make([]string, 0, len(msgs))}
	for _, m := range msgs {
		b.entries = append(b.entries, m.ID)
		raw, _ := m.Values["event"].(string)
		e, err := decodeStreamEvent(raw)
		if err != nil {
			s.m.events.WithLabelValues(lifecycleDropped).Inc()
			s.g.log.Warn("roomcast gateway: lifecycle hook: skipping a stream entry without a readable event", "entry", m.ID, "err", err)
			continue
		}
		b.events = append(b.events, e)
	}
	return b
}

func (s *redisLifecycleSource) ack(ctx context.Context, b lifecycleBatch) error {
	if len(b.entries) == 0 {
		return nil
	}
	return s.rdb.XAck(ctx, s.stream, lifecycleGroup, b.entries...).Err()
}

// keep resets the idle time of b's entries (taking them back if another
// node claimed them meanwhile: both then deliver, at least once).
func (s *redisLifecycleSource) keep(ctx context.Context, b lifecycleBatch) {
	if len(b.entries) == 0 {
		return
	}
	err := s.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: s.stream, Group: lifecycleGroup, Consumer: s.consumer, Messages: b.entries,
	}).Err()
	if err != nil && ctx.Err() == nil {
		s.g.log.Debug("roomcast gateway: lifecycle hook: keeping a pending batch failed", "err", err)
	}
}

// pending is the group's pending entries (read, not acknowledged) plus
// its lag (not read yet), cluster-wide.
func (s *redisLifecycleSource) pending(ctx context.Context) (int64, bool) {
	groups, err := s.rdb.XInfoGroups(ctx, s.stream).Result()
	if err != nil {
		return 0, false
	}
	for _, gr := range groups {
		if gr.Name == lifecycleGroup {
			n := gr.Pending
			if gr.Lag > 0 {
				n += gr.Lag
			}
			return n, true
		}
	}
	return 0, false
}

func (s *redisLifecycleSource) stop() {}
