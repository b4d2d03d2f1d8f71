// Package queue is Roomcast's per-user durable queue: every user has a
// stream of the messages that must not be lost, a live feed of the same
// messages, recovery sessions for disconnected sockets, and durable room
// membership.
//
// Store is the contract; Memory implements it in one process, and package
// queue/redisqueue implements it on Redis (Redis Streams plus sharded
// pub/sub, for several nodes) with the same semantics. This package does
// not link go-redis: a single-node program uses Memory without it.
//
//   - Append stores a message in each addressed user's stream and publishes
//     it live in one atomic step per user, so every live delivery carries
//     its stream entry ID, which is the offset the client sees. It fails
//     loudly (ErrUnavailable) when the message cannot be stored.
//   - Streams are bounded by entries (MaxLen) and payload bytes (MaxBytes,
//     counted by Message.Size): a full stream refuses an Append for its
//     user (ErrQueueFull in a per-user AppendError; the other users get
//     the message) and keeps its history — nothing is trimmed to make
//     room. Entries leave by age (Retention; a stream nobody appended to
//     for Retention is dropped). Read never returns a
//     partial history: when entries after the requested offset are gone, or
//     the offset is older than the retention, it returns ErrOffsetExpired
//     and the session is not recovered.
//   - Live delivery that cannot go on without a gap (a Redis Store whose
//     missed messages were trimmed while it resubscribed) ends the
//     subscription with ErrGap.
//   - Replay hands a reconnecting client over from its backlog to live
//     delivery without a gap or a duplicate, in order: it subscribes first
//     and buffers, sends the backlog, then the buffered messages it has not
//     sent, then live ones. It works on any Store.
//
// Offsets are stream entry IDs, "<milliseconds>-<sequence>", compared with
// CompareOffsets. Last gives a fresh session its first offset; "0-0" is
// never a valid offset (it is older than any retention).
//
// # Concurrency
//
// Stores are safe for concurrent use. Subscribers' callbacks are called
// from the Store's delivery goroutine (Memory: the appending goroutine),
// one at a time per user and in stream order; they must not block and must
// not call Append. Memory keeps no goroutine; its lock order is a user's
// delivery lock, then the store lock. Replay keeps no goroutine
// (context.AfterFunc calls stop when its ctx ends).
package queue
