// Package socketio is a Socket.IO v5 server (socket.io 4.x) for Go: the
// vocabulary of the Node server — Server, Namespace, Socket, rooms, acks,
// middleware, broadcasts and cluster-wide operations through an adapter.
//
//	srv, _ := socketio.New(socketio.Config{})
//	srv.Sockets().OnConnection(func(s *socketio.Socket) {
//		s.On("chat", func(e *socketio.Event) {
//			s.To("room1").Emit("chat", e.Args...)
//		})
//	})
//	http.Handle("/socket.io/", srv)
//
// Handlers that every socket of a namespace shares can be registered once
// on the namespace (Namespace.OnEvent, OnUnhandledEvent, UseEvent) rather
// than on each socket in OnConnection: an idle connection then keeps no
// handler table of its own (the gateway does this).
//
// # Connection state recovery and durable delivery
//
// With Config.Recovery (a queue.Store: Redis Streams for a cluster, memory
// for one node) the server does what socket.io ≥ 4.6 calls connection state
// recovery, on any node and across node crashes: CONNECT replies carry a
// pid, events carry the client's offset as their last argument, and a
// reconnecting client gets what was addressed to its user while it was away
// before its CONNECT reply.
//
//	srv, _ := socketio.New(socketio.Config{Recovery: &socketio.Recovery{
//		Store: store,
//		User:  func(s *socketio.Socket) string { return userFromToken(s) },
//	}})
//	ids, err := srv.Sockets().ToUser("alice").Emit(ctx, "invoice", inv) // stored, then delivered
//
// See Recovery for the details and NotRecoveredEvent for what a client that
// could not be recovered receives.
//
// # Extension hooks
//
// Recovery is one component behind a narrow interface (hooks.go): the core
// (Server, Namespace, Socket, client, BroadcastOperator) calls the
// server's extension when a CONNECT arrives (the connect lookup, which
// returns the socket's hooks), and the socket's hooks when it is
// connecting (after the middlewares), connected (the CONNECT reply), joins
// or leaves rooms, disconnects, and sends an EVENT (the frame tail that
// carries the offset); SocketsJoin/SocketsLeave and broadcasts to durable
// rooms go through the same extension. Without Recovery the hooks do
// nothing and cost no allocation. A socket's recovery state hangs off one
// field of Socket.
//
// # Concurrency
//
// Every exported method is safe for concurrent use. The packets of one
// connection are handled one at a time, in order, on that connection's read
// loop (the engine's goroutine that read them: a websocket's read loop, a
// polling POST): the CONNECT with its middlewares, recovery's replay and
// OnConnection, then event handlers, run there, so a handler that blocks
// delays only its own client. Work that must not hold up the read loop
// goes to Socket.Go. Emits never block: they append encoded frames to the
// connection's byte-capped send queue, and a connection whose queue
// overflows is closed as a slow consumer.
//
// OnDisconnecting and OnDisconnect handlers run where the socket ends:
// when its connection closed, on a goroutine of the Server's (the engine
// reports the close on its session goroutine, which is not kept waiting);
// on the read loop for a client's namespace disconnect, or for the
// previous socket of a client that recovered on a new connection; on the
// caller's goroutine for Socket.Disconnect(false).
//
// Goroutines: the Server owns the cleanups of closed connections, the
// goroutines of Socket.Go (their context ends with the socket) and, with
// Recovery, the session stores at disconnect; Shutdown waits for them
// after the engine's. Recovery also runs two timers per socket: the
// session refresh (every Window, stopped at disconnect) and a save 100 ms
// after a room change (a no-op once the socket is gone). Live durable
// messages arrive on the Store's goroutines.
//
// Lock order, outermost first: Server.mu (the namespace map; held while
// Of creates a namespace's adapter, so an adapter factory must not call
// back into the Server); the adapter's room shard locks (held while
// delivering); a socket's offset lock (recovery: reading the offset and
// queueing the frames that carry it); the connection's queue lock
// (engineio.Conn.mu). Namespace.mu, Socket.mu, the client's lock and
// recovery's refresh lock are leaf locks, never held while calling the
// adapter, the Store or the engine.
package socketio
