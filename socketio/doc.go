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
// before a connection's queue lock (see package adapter).
package socketio
