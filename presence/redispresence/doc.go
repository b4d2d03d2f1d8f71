// Package redispresence is the cluster presence.Store: presence in Redis,
// written by the node that owns each socket, read by any node without
// asking the others, and swept when a node's lease in the node registry
// expires.
//
// # Keys
//
// With <p> = Config.Prefix + ":presence" and a room's tag
// {<len(nsp)>:<nsp><room>} (so a room's keys share one Cluster slot):
//
//	<p>:{room}:sockets  hash  sid -> node "\n" user
//	<p>:{room}:members  hash  user -> sockets
//	<p>:{room}:info     hash  user -> public info (JSON)
//	<p>:{room}:gens     hash  user -> membership generation (event ids)
//	<p>:{room}:seq      the room's generation counter
//	<p>:{room}:occ      the occupancy generation
//	<p>:{room}:nodes    hash  node -> sockets
//	<p>:{room}:outbox   list  events decided, not yet in the stream
//	<p>:{room}:tick     the coalescing throttle (Throttle)
//	<p>:socket:{<len(nsp)>:<nsp><sid>}[:outbox]  hash {node, user}: the socket's owner
//	<p>:node:{<node>}:rooms    set   rooms where the node has (had) sockets
//	<p>:node:{<node>}:sockets  hash  socket -> user, the node's sockets
//	<p>:nodes                  set   nodes with entries (swept when not live)
//	<p>:rooms:{<nsp>}          zset  occupied rooms (tombstones negative)
//	<p>:sweep:{<node>}         the lock of the node's sweep
//	Config.Prefix:events       the event stream; {Config.Prefix:events}:ids
//	                           the ids appended in the last DedupeWindow
//
// # Exactly once
//
// Every decision (join, leave, connect, disconnect, occupied, vacated) is
// made by one script in the slot of its room or socket, which pushes the
// event to that slot's outbox in the same step. The deciding node then
// appends it to the stream (a script that skips ids appended lately, so a
// repeated append is harmless) and drops it from the outbox. A node that
// dies between the two leaves the event in the outbox, and its sweep
// appends it: each event is in the stream once.
//
// # Concurrency
//
// A Store is safe for concurrent use. A node's calls for one room are
// ordered with the writes of its room index by a striped lock (never
// held while the Listener runs); the sweep runs on one goroutine, started
// by New and stopped by Close, and calls the Listener and OnLost there.
package redispresence
