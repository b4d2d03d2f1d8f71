// Package redispubsub is Roomcast's one Redis pub/sub layer: the connections
// that carry a node's subscriptions, shared by the Redis adapters (package
// adapter/redisadapter) and the Redis queue store (package queue/redisqueue),
// each with its own Subscriber.
//
// A Subscriber keeps reference-counted subscriptions (SUBSCRIBE, PSUBSCRIBE
// and sharded SSUBSCRIBE) on a single Redis (standalone or Sentinel: one
// connection) or on a Redis Cluster (shard channels on one connection per
// master that owns their slots, the others on one connection), and keeps
// them alive with one policy:
//
//   - Reconnection: a failed connection is dropped and made again with
//     backoff (100 ms doubling to 2 s), and every subscription re-sent on it
//     (one SSUBSCRIBE per shard channel on a Cluster, where one command may
//     not span slots; batches elsewhere).
//   - Liveness: a connection silent for HealthCheck is PINGed; one still
//     silent a HealthCheck later is taken for dead and replaced. A Cluster
//     slot move (an SUNSUBSCRIBE nobody asked for) replaces the connection
//     too.
//   - Readiness: Ready is nil when every connection the subscriptions need
//     is up and has confirmed them.
//   - Re-subscription: OnSubscribed is told each time Redis confirms a
//     subscription, the first time and after every reconnection, so a user
//     can recover what was published while it was not subscribed (the queue
//     reads its stream back there).
//
// It owns re-subscription instead of leaving it to go-redis: go-redis does
// re-subscribe a PubSub after a reconnect (TestGoRedisResubscribes), but in
// one command for every shard channel, which a Cluster refuses across
// slots, and on the node of an arbitrary channel. Each (re)connection is
// therefore a fresh PubSub to which the Subscriber sends what it wants.
//
// # Concurrency
//
// A Subscriber is safe for concurrent use. Goroutines, all stopped by Close:
// one supervisor (connects, reconciles, backs off) and one reader per live
// connection. Callbacks run on a reader (OnMessage, OnSubscribed: in the
// order Redis sent them on that connection) or on the supervisor, never
// under the Subscriber's lock; they may call Add and Remove. Lock order: the
// Subscriber's lock, then go-redis's PubSub lock.
package redispubsub
