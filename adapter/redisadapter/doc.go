// Package redisadapter is the multi-node adapter of Roomcast: a Cluster
// connects a node to the others through Redis, wire-compatible with
// @socket.io/redis-adapter 8.x, in one of two modes of one Config: Classic
// (createAdapter: PUBLISH/PSUBSCRIBE) or Sharded (createShardedAdapter:
// SPUBLISH/SSUBSCRIBE, a channel per room). Its Factory gives each
// namespace an adapter.Adapter whose local half is an adapter.Memory.
//
// Layout: redisadapter.go (Config, Mode, Cluster), namespace.go (the
// per-namespace core shared by both modes: broadcasts, requests to other
// nodes and the waiting for their answers), classic.go and sharded.go (each
// mode's protocol: channels, encodings, handling of what other nodes send),
// broker.go (what all namespaces of a node share: the pub/sub Subscriber of
// package internal/redispubsub, routing of received messages, node
// registry, reply workers, metrics), pipeline.go (the ordered publish
// pipeline of BroadcastAsync), pending.go (requests awaiting answers) and
// codec.go (the generic values of the Node packages' JSON and MessagePack).
//
// # Concurrency and lock order
//
// Safe for concurrent use. Locks, outermost first: the sharded protocol's
// room lock, the broker's route lock, the Subscriber's lock, go-redis's
// PubSub lock; none is held while calling into a namespace. Remote
// broadcasts are applied with adapter.Memory.DeliverLocal, on a Subscriber
// reader, under the room shard locks only.
package redisadapter
