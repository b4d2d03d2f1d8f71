// Package queue is Roomcast's per-user durable queue: every user has a
// stream of the messages that must not be lost, a live feed of the same
// messages, recovery sessions for disconnected sockets, and durable room
// membership.
//
// Store is the contract; Redis (Redis Streams plus sharded pub/sub, for
// several nodes) and Memory (one process) implement it with the same
// semantics:
//
//   - Append stores a message in each addressed user's stream and publishes
//     it live in one atomic step per user, so every live delivery carries
//     its stream entry ID, which is the offset the client sees. It fails
//     loudly (ErrUnavailable) when the message cannot be stored.
//   - Streams are bounded by length (MaxLen; Redis trims in small batches)
//     and age (Retention; a stream nobody appended to for Retention is
//     dropped). Read never returns a partial history: when entries after
//     the requested offset are gone, or the offset is older than the
//     retention, it returns ErrOffsetExpired and the session is not
//     recovered.
//   - Live delivery survives lost pub/sub connections: a Redis Store reads
//     back from the stream what was published while it was resubscribing,
//     and ends the subscription with ErrGap in the rare case that was
//     trimmed meanwhile.
//   - Replay hands a reconnecting client over from its backlog to live
//     delivery without a gap or a duplicate, in order: it subscribes first
//     and buffers, sends the backlog, then the buffered messages it has not
//     sent, then live ones.
//
// Offsets are stream entry IDs, "<milliseconds>-<sequence>", compared with
// CompareOffsets. Last gives a fresh session its first offset; "0-0" is
// never a valid offset (it is older than any retention). The Redis Store
// needs Redis 7 (SPUBLISH, max-deleted-entry-id); every key of a user
// shares the {user} hash tag, so it works on Redis Cluster.
//
// # Concurrency
//
// Stores are safe for concurrent use. Subscribers' callbacks are called
// from the Store's delivery goroutine (Redis: one reader per pub/sub
// connection; Memory: the appending goroutine), one at a time per user and
// in stream order; they must not block and must not call Append. A Redis
// Store's live subscriptions go through the one Redis pub/sub layer of
// package internal/redispubsub (reconnection with backoff, liveness checks,
// re-subscription after which the store reads back what it missed); the
// Store owns that Subscriber (a supervisor and one reader per connection)
// and one housekeeping goroutine, started by the first Subscribe; Close
// stops them and waits. Ready asks both Redis and the live subscriptions.
// Replay keeps no goroutine (context.AfterFunc calls stop when its ctx
// ends). Lock order inside the Redis store: an entry's delivery lock, then
// the hub's map lock, then the Subscriber's lock; inside Memory: a user's
// delivery lock, then the store lock.
package queue
