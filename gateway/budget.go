package gateway

// The durable budget (--durable-budget): how many durable bytes one client
// user may make the gateway store per minute, counted as the message's
// queue.Message.Size times the number of recipient queues. It lives here,
// not in internal/ratelimit, because it is a different kind of limit: the
// rate limiters there answer without I/O and sync their counts in the
// background (so they overshoot by design), while a durable append does
// Redis I/O anyway and the budget must hold exactly across reconnects and
// nodes — one INCRBY on a per-sender, per-minute counter, pipelined with
// its EXPIRE. The HTTP API (the backend) is not budgeted.

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/queue"
)

var (
	// errTooLarge refuses a durable message over --max-durable-message.
	errTooLarge = errors.New("gateway: durable message too large")
	// errBudget refuses a client's durable message over --durable-budget.
	errBudget = errors.New("gateway: durable budget exceeded")
)

// budgetWindow is the span of one budget counter.
const budgetWindow = time.Minute

// durableBudget charges senders' durable bytes against the per-minute budget.
type durableBudget interface {
	// charge counts n bytes for sender in the current window, or returns
	// errBudget (counting nothing) when that would exceed the budget.
	charge(ctx context.Context, sender string, n int64) error
}

// memoryBudget is the budget of a single node.
type memoryBudget struct {
	limit int64
	now   func() time.Time

	mu     sync.Mutex
	window int64 // the current window (unix minutes)
	used   map[string]int64
}

func newMemoryBudget(limit int64) *memoryBudget {
	return &memoryBudget{limit: limit, now: time.Now, used: make(map[string]int64)}
}

func (b *memoryBudget) charge(_ context.Context, sender string, n int64) error {
	w := b.now().Unix() / int64(budgetWindow/time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	if w != b.window {
		b.window = w
		clear(b.used) // the counters of a past window are of no use
	}
	if b.used[sender]+n > b.limit {
		return errBudget
	}
	b.used[sender] += n
	return nil
}

// redisBudget is the cluster-wide budget: a counter per sender and window,
// <prefix>:budget:{<sender>}:<unix minute>, expiring after two windows.
type redisBudget struct {
	client redis.UniversalClient
	prefix string
	limit  int64
	now    func() time.Time
}

func (b *redisBudget) charge(ctx context.Context, sender string, n int64) error {
	w := b.now().Unix() / int64(budgetWindow/time.Second)
	key := b.prefix + ":budget:{" + sender + "}:" + strconv.FormatInt(w, 10)
	var incr *redis.IntCmd
	_, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.IncrBy(ctx, key, n)
		p.Expire(ctx, key, 2*budgetWindow)
		return nil
	})
	if err != nil {
		return errors.Join(queue.ErrUnavailable, err)
	}
	if incr.Val() > b.limit {
		// Give back what was refused, so that the sender's smaller messages
		// still fit. Concurrent charges may see each other's refused bytes
		// for this instant: they are refused too, never over-admitted.
		b.client.DecrBy(ctx, key, n)
		return errBudget
	}
	return nil
}

// senderKey is the context key of the client user a durable emit is charged to.
type senderKey struct{}

// withSender marks ctx as a client's durable emit, charged to user.
func withSender(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, senderKey{}, user)
}

// admitDurable is the gateway's socketio.Recovery.Admit: every durable
// message (a client's direct message, an API emit to users, a broadcast to
// a durable room) is at most --max-durable-message bytes of
// queue.Message.Size (event name, JSON arguments, binary attachments); a
// client's is charged size × distinct recipients to its sender's budget.
func (g *Gateway) admitDurable(ctx context.Context, msg queue.Message, users []string) error {
	size := int64(msg.Size())
	if g.cfg.MaxDurableMessage > 0 && size > int64(g.cfg.MaxDurableMessage) {
		g.metrics.LimitRefused("too_large")
		return errTooLarge
	}
	sender, _ := ctx.Value(senderKey{}).(string)
	if sender == "" || g.budget == nil {
		return nil
	}
	if err := g.budget.charge(ctx, sender, size*int64(distinct(users))); err != nil {
		if errors.Is(err, errBudget) {
			g.metrics.LimitRefused("durable_budget")
		}
		return err
	}
	return nil
}

// distinct counts the distinct users.
func distinct(users []string) int {
	if len(users) < 2 {
		return len(users)
	}
	seen := make(map[string]struct{}, len(users))
	for _, u := range users {
		seen[u] = struct{}{}
	}
	return len(seen)
}
