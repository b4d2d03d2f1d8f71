// Package adapter moves broadcasts and cluster-wide operations between the
// sockets of a namespace, on this node and on the others.
//
// Adapter is the interface a Socket.IO namespace talks to. Memory is the
// single-node implementation and the local half of every other one: it keeps
// the namespace's room index (package room) and fans a broadcast out to the
// local sockets it selects. Multi-node implementations (package
// adapter/redisadapter) relay the same operations through a broker and apply
// what they receive with Memory's *Local methods. This package does not
// depend on Redis: a single-node program does not link a Redis client.
//
// # Encoding once
//
// A broadcast is a *Message: the Socket.IO packet plus its wire frames,
// encoded the first time a socket needs them and shared by every recipient.
// Delivering to a socket appends the shared frames to that socket's byte-capped
// send queue; it never blocks and allocates nothing.
//
// # Concurrency and lock order
//
// Adapters are safe for concurrent use. Local fan-out runs under a room shard's
// read lock (see package room) and calls Socket.Deliver, which takes the
// connection's queue lock: room shard, then connection. Socket implementations
// must not call back into the adapter from Deliver; a socket closed for being
// slow leaves its rooms from another goroutine.
//
// The Redis adapters add their own locks outside these; see package
// adapter/redisadapter.
package adapter
