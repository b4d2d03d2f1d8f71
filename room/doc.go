// Package room is the node-local room index of one namespace: which sockets
// are in which rooms, and the iteration that local fan-out is built on.
//
// # Concurrency
//
// An Index is safe for concurrent use. Rooms and members are spread over
// fixed shards, each guarded by its own RWMutex, so joins in one room do not
// contend with broadcasts to another. A call holds at most one shard lock at a
// time; callbacks passed to Each run under a shard's read lock and must not
// call back into the Index (they may enqueue to a connection: the lock order is
// room shard, then connection queue — never the reverse).
package room
