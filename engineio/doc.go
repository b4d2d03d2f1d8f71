// Package engineio is an Engine.IO v4 server: the transport layer under
// Socket.IO v5, speaking the wire protocol of the official socket.io /
// engine.io-client packages over HTTP long-polling and websocket, with the
// polling-to-websocket upgrade, server-driven heartbeats, and bounded,
// non-blocking per-connection send queues.
//
// A Server is an http.Handler mounted at any path ("/socket.io/" for
// Socket.IO). Config.OnConnection is called for each new session with its
// *Conn; it installs the session's Handlers and may start sending. Outgoing
// messages are Frames: a text Frame already carries its encoded Engine.IO
// packet (type byte '4' included), so a broadcast encodes once and hands the
// same bytes to every connection, polling or websocket alike.
//
//	srv, _ := engineio.New(engineio.Config{OnConnection: func(c *engineio.Conn) {
//		c.SetHandlers(engineio.Handlers{
//			OnMessage: func(data []byte, binary bool) { _ = c.Send(engineio.TextFrame(string(data))) },
//		})
//	}})
//	http.Handle("/engine.io/", srv)
//
// # Files
//
// server.go routes requests, runs handshakes and Shutdown and keeps the
// session index; polling.go serves GET/POST long-polling; websocket.go
// accepts websockets, runs the upgrade probe and the read loop; conn.go is
// the session: its queue, heartbeat, writer and close sequence; packet.go
// encodes and decodes packets and payloads.
//
// # Concurrency contract
//
// Every method of Server and Conn is safe for concurrent use.
//
// Goroutines: an idle websocket session has none. Between messages its
// read is parked in the server's read poller (Linux: one epoll instance
// and one goroutine per server, from its first websocket to Shutdown),
// which starts a fresh read goroutine when bytes arrive; it parks again
// after the packets it read were handled, unless the client is busy (its
// previous packet came less than a second before: a waiting read costs it
// less than a hand-off through the poller per message). A TLS
// connection, or one whose client sent bytes with its handshake, keeps a
// goroutine waiting in its read, as every websocket does on other
// systems. A writer goroutine (Conn.writeLoop) exists only while the
// connection is being sent to: Send starts it when none runs, wakes it otherwise, and it
// ends after about a second with nothing to write (for polling the pending
// GET writes the queue). Closing starts the close
// sequence on a goroutine of its own (Conn.teardown), which takes over the
// writer and ends with OnClose; the Server counts each session until then.
// Heartbeats run on one clock per server (one runtime timer): it queues
// each session's ping and closes a session whose pong is late; it never
// waits behind a write.
//
// Write deadline: every websocket flush and every polling response must
// finish within Config.WriteTimeout (a deadline on the net.Conn, or
// http.ResponseController.SetWriteDeadline). A peer that stops reading
// blocks the write once the kernel buffers are full; when the deadline
// passes the session closes as a slow consumer (ReasonSlowConsumer), like
// one whose queue outgrew MaxQueueBytes. A stalled peer so lives at most
// WriteTimeout after its buffers filled, or PingInterval + PingTimeout when
// nothing is queued to it, whichever comes first. A
// websocket's read loop runs on a goroutine of its own, started by the HTTP
// handler that accepted the websocket (the handshake, or the upgrade probe
// once it completed), which then returns; the session counts its readers
// (Conn.readers) and the close sequence closes the websocket and waits for
// them. Polling requests are read and answered on net/http's request
// goroutines. Shutdown waits for every session's close sequence, and so for every
// reader. No goroutine is left behind by a client that vanishes mid-poll,
// an abandoned upgrade or Shutdown.
//
// Callbacks: OnConnection runs on the handshake's request goroutine,
// before the client has its sid. OnMessage runs on the goroutine that read
// the message (a websocket's read loop, a polling POST), OnUpgrade on the
// upgrade probe's request goroutine, OnClose on the close sequence's goroutine
// after the transport closed and its readers returned. The three are
// serialized per Conn (Conn.deliverMu: never concurrent for one Conn);
// OnClose is the last and is called exactly once. Callbacks may call Send
// and Close on any Conn; they must not block indefinitely, since the
// session's reads (and for OnClose, Shutdown) wait for them.
//
// Send never blocks and does not allocate in steady state: it appends the
// frames to the queue under the Conn's mutex and, when no writer runs,
// starts one (websocket) or wakes the pending GET (polling). A queue over
// Config.MaxQueueBytes closes the session as a slow consumer: Send returns
// ErrSlowConsumer and OnClose follows on the close sequence's goroutine, never
// inside Send. A producer with much to send waits with WaitBelow until the
// transport took the queue below a mark, instead of polling Buffered.
//
// Close reasons are typed (Reason): the socket.io strings, byte for byte,
// from which the metrics labels are derived.
//
// Lock order: Server.regMu before a shard's mutex (registration).
// Conn.deliverMu (held while a callback runs) before Conn.mu. Conn.mu is
// never held while taking a shard's mutex, nor during I/O or callbacks.
// A websocket's park lock (readPark.mu) is held while a read decides to
// park and while the close sequence runs the library's Close (which reads
// the peer's close frame through the same buffer); only the poller's
// registry lock is taken inside it.
package engineio
