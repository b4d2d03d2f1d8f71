package queue

import (
	"context"
	"time"
)

type idempotencyKey struct{}

type idempotency struct {
	key    string
	window time.Duration
}

// WithIdempotencyKey returns ctx carrying an idempotency key for the Append
// calls made with it: a Store that supports it appends a message under a
// key at most once per user within window — the key's record and the
// append are one atomic step — and answers a repeat with the first
// append's entry ID, without appending or delivering again. The Redis Store
// supports it; the Memory store ignores it (a single node's caller
// serialises repeats itself).
func WithIdempotencyKey(ctx context.Context, key string, window time.Duration) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, idempotency{key: key, window: window})
}

// IdempotencyKey returns the key and window WithIdempotencyKey put in ctx,
// or "" and 0.
func IdempotencyKey(ctx context.Context) (string, time.Duration) {
	v, _ := ctx.Value(idempotencyKey{}).(idempotency)
	return v.key, v.window
}
