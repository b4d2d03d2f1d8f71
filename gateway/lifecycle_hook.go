package gateway

// The lifecycle hook (--lifecycle-hook, docs/HOOKS.md "Lifecycle events"):
// lifecycle events go to the backend in signed batches, at least once.
// A dispatcher per node takes batches from a source — the event stream
// through a consumer group with Redis (lifecycle_hook_redis.go), a bounded
// in-memory queue fed by OnLifecycle without (lifecycle_hook_memory.go) —
// and POSTs each through the hook client (hooks.go: signing, timeout,
// retries of what surely did not arrive, the concurrency bound, the
// URL's breaker) until the backend answers 2xx; only then is the batch
// acknowledged. A failed batch is sent again after a backoff, with the
// same request id, for as long as the node runs: with Redis it stays
// pending in the group, so a node that dies leaves it to another.
//
// One goroutine per node (run), owned by the dispatcher and stopped by
// close (from closeBackends, before the Redis client closes).

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/presence"
)

// Backoff between two deliveries of a failed batch: jittered, doubling
// from lifecycleBackoffBase up to lifecycleBackoffMax.
const (
	lifecycleBackoffBase = 100 * time.Millisecond
	lifecycleBackoffMax  = 10 * time.Second
)

// Results of lifecycle events: the result label of
// roomcast_lifecycle_hook_events_total.
const (
	lifecycleDelivered = "delivered" // in a batch the backend answered 2xx
	lifecycleFailed    = "failed"    // in a failed attempt (sent again later)
	lifecycleDropped   = "dropped"   // never delivered: memory queue overflow, trimmed from the stream, undecodable
)

// lifecycleBatch is a batch of events and what its source needs to
// acknowledge it (the stream entry ids with Redis).
type lifecycleBatch struct {
	events  []hook.LifecycleEvent
	entries []string
}

// lifecycleSource is where a dispatcher takes its batches from.
type lifecycleSource interface {
	// next waits for the next batch (at most max events) until ctx ends.
	// A batch may have entries and no events (entries to acknowledge only).
	next(ctx context.Context, max int) (lifecycleBatch, error)
	// ack records that b was delivered.
	ack(ctx context.Context, b lifecycleBatch) error
	// keep tells the source that b is still being retried by this node.
	keep(ctx context.Context, b lifecycleBatch)
	// pending is the number of events not yet delivered, for the gauge;
	// false when it could not be read.
	pending(ctx context.Context) (int64, bool)
	// stop is called once run has returned.
	stop()
}

type lifecycleMetrics struct {
	events  *prometheus.CounterVec // result
	pending prometheus.Gauge
}

func newLifecycleMetrics(reg prometheus.Registerer) (*lifecycleMetrics, error) {
	m := &lifecycleMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "roomcast_lifecycle_hook_events_total",
			Help: "Lifecycle events for --lifecycle-hook by result: delivered (the backend answered 2xx), failed (in a failed attempt, sent again), dropped (memory queue overflow, trimmed from the stream before delivery).",
		}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "roomcast_lifecycle_hook_pending",
			Help: "Lifecycle events not yet delivered to --lifecycle-hook: with Redis the consumer group's pending entries plus its lag (cluster-wide), without the node's queue.",
		}),
	}
	for _, c := range []prometheus.Collector{m.events, m.pending} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{lifecycleDelivered, lifecycleFailed, lifecycleDropped} {
		m.events.WithLabelValues(r)
	}
	return m, nil
}

// lifecycleDispatcher delivers the batches of its source to the lifecycle hook.
type lifecycleDispatcher struct {
	g      *Gateway
	target *hookURL
	src    lifecycleSource
	m      *lifecycleMetrics

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// startLifecycleHook starts the node's dispatcher when --lifecycle-hook is
// set: reading the stream with Redis, else listening to OnLifecycle.
func (g *Gateway) startLifecycleHook() error {
	if g.hooks == nil || g.hooks.lifecycle == nil {
		return nil
	}
	m, err := newLifecycleMetrics(g.registry)
	if err != nil {
		return err
	}
	var src lifecycleSource
	if g.rdb != nil {
		rs, err := newRedisLifecycleSource(g, m)
		if err != nil {
			return err
		}
		src = rs
	} else {
		ms := newMemoryLifecycleSource(g.cfg.LifecycleHookQueue, m, g.log)
		g.OnLifecycle(ms.push)
		src = ms
	}
	d := &lifecycleDispatcher{g: g, target: g.hooks.lifecycle, src: src, m: m, done: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	g.lifeHook = d
	go d.run()
	return nil
}

// close stops the dispatcher: a batch in flight is not acknowledged (with
// Redis another node, or this one restarted, delivers it).
func (d *lifecycleDispatcher) close() {
	if d == nil {
		return
	}
	d.once.Do(func() {
		d.cancel()
		<-d.done
		d.src.stop()
	})
}

func (d *lifecycleDispatcher) run() {
	defer close(d.done)
	fails := 0 // reads in a row that failed
	for d.ctx.Err() == nil {
		b, err := d.src.next(d.ctx, d.g.cfg.LifecycleHookBatch)
		if err != nil {
			if d.ctx.Err() != nil {
				return
			}
			if fails == 0 {
				d.g.log.Warn("roomcast gateway: lifecycle hook: reading events failed", "err", err)
			}
			if !d.sleep(fails) {
				return
			}
			fails++
			continue
		}
		fails = 0
		if len(b.events) == 0 {
			if len(b.entries) > 0 {
				_ = d.src.ack(d.ctx, b)
			}
			continue
		}
		d.deliver(b)
	}
}

// deliver sends b until the backend takes it or the dispatcher stops.
func (d *lifecycleDispatcher) deliver(b lifecycleBatch) {
	id := batchID(b.events)
	req := &hook.LifecycleRequest{Type: hook.TypeLifecycle, ID: id, Events: b.events}
	n := float64(len(b.events))
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(d.ctx, d.g.cfg.HookTimeout)
		err := d.g.hooks.call(ctx, d.target, id, req, func([]byte) error { return nil })
		cancel()
		if err == nil {
			d.m.events.WithLabelValues(lifecycleDelivered).Add(n)
			if err := d.src.ack(d.ctx, b); err != nil && d.ctx.Err() == nil {
				// Still pending: delivered again (at least once) after a claim.
				d.g.log.Warn("roomcast gateway: lifecycle hook: acknowledging a delivered batch failed", "err", err)
			}
			return
		}
		if d.ctx.Err() != nil {
			return
		}
		d.m.events.WithLabelValues(lifecycleFailed).Add(n)
		if attempt == 0 || attempt%10 == 9 {
			d.g.log.Warn("roomcast gateway: lifecycle hook: delivery failed; retrying", "batch", id, "events", len(b.events), "attempt", attempt+1, "err", err)
		}
		if !d.sleep(attempt) {
			return
		}
		d.src.keep(d.ctx, b)
	}
}

// sleep waits the backoff of attempt; false when the dispatcher stops.
func (d *lifecycleDispatcher) sleep(attempt int) bool {
	limit := lifecycleBackoffBase << min(attempt, 10)
	if limit > lifecycleBackoffMax {
		limit = lifecycleBackoffMax
	}
	t := time.NewTimer(limit/2 + time.Duration(mrand.Int64N(int64(limit/2))))
	defer t.Stop()
	select {
	case <-d.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// batchID is a batch's request id: a hash of its events' ids, so a batch
// sent again (by this node or another) has the same id.
func batchID(events []hook.LifecycleEvent) string {
	h := sha256.New()
	for _, e := range events {
		h.Write([]byte(e.ID))
		h.Write([]byte{'\n'})
	}
	return "lc-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// lifecycleEvent is a presence event as the hook sends it.
func lifecycleEvent(e presence.Event) hook.LifecycleEvent {
	return hook.LifecycleEvent{ID: e.ID, Type: e.Type, Namespace: e.Namespace, Room: e.Room, Socket: e.Socket,
		User: e.User, Info: e.Info, Node: e.Node, Reason: e.Reason, Members: e.Members, Time: e.Time}
}

// decodeStreamEvent reads the "event" field of a stream entry (the JSON
// of a presence.Event).
func decodeStreamEvent(raw string) (hook.LifecycleEvent, error) {
	var e hook.LifecycleEvent
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return e, err
	}
	if e.ID == "" || e.Type == "" {
		return e, errors.New("event without id or type")
	}
	return e, nil
}
