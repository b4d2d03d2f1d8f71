// Package redisqueue is the queue.Store on Redis: one Redis Stream per user
// for the durable messages, live delivery through sharded pub/sub
// (SPUBLISH/SSUBSCRIBE), recovery sessions and durable room members as
// plain keys. It needs Redis 7 (SPUBLISH, max-deleted-entry-id); every key
// of a user shares the {user} hash tag, so it works on Redis Cluster.
//
// Append runs one Lua script per user that trims the stream by age
// (recording the cut as the stream's max-deleted-entry-id so that Read can
// refuse partial histories, and subtracting the cut entries' sizes from the
// user's byte counter, a key in the same hash slot), refuses the entry when
// the stream is full (MaxLen entries or MaxBytes bytes), and otherwise adds
// it and publishes it with its ID. Live delivery survives lost pub/sub
// connections: after a re-subscription the Store reads back from the
// stream what was published meanwhile, and ends the subscription with
// queue.ErrGap in the rare case that was trimmed.
//
// # Concurrency
//
// A Store is safe for concurrent use. Its live subscriptions go through the
// one Redis pub/sub layer of package internal/redispubsub (reconnection
// with backoff, liveness checks, re-subscription after which the Store
// reads back what it missed); the Store owns that Subscriber (a supervisor
// and one reader per connection) and one housekeeping goroutine, started by
// the first Subscribe; Close stops them and waits. Subscribers' callbacks
// run on a reader, one at a time per user and in stream order. Ready asks
// both Redis and the live subscriptions. Lock order: an entry's delivery
// lock, then the hub's map lock, then the Subscriber's lock.
package redisqueue
