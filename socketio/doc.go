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
// # Concurrency
//
// Every exported method is safe for concurrent use. The packets of one
// connection are handled one at a time, in order, on that connection's read
// loop: event handlers, middleware and OnConnection run there, so a handler
// that blocks delays only its own client. Emits never block: they append
// encoded frames to the connection's byte-capped send queue, and a connection
// whose queue overflows is closed as a slow consumer.
//
// Lock order: Namespace.mu and Socket.mu are leaf locks, never held while
// calling the adapter or the engine; the adapter's room shard locks are taken
// before a socket's offset lock (recovery), which is taken before its
// connection's queue lock (see package adapter).
package socketio
