// Package presence keeps who is in which room: per room, its member users
// with the number of their sockets and their public info, written by the
// node that owns each socket and read without asking other nodes. It also
// decides the lifecycle events of sockets and rooms (connect, disconnect,
// join, leave, occupied, vacated) at the user level, each with a
// deterministic id, so that two nodes never both announce one.
//
// Store is the interface; Memory is the single-node implementation and
// presence/redispresence the cluster one (Redis, with a sweep of the
// entries of nodes that died). Both pass the contract of
// presence/internal/presencetest.
//
// # Concurrency
//
// A Store is safe for concurrent use. Calls for one socket must be made in
// order by its owner (the gateway serializes them per socket); calls for
// different sockets may race, and the Store decides joins and leaves
// atomically per room.
package presence
