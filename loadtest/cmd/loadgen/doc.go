// Command loadgen drives a Socket.IO v4 server that implements Roomcast's
// gateway contract (JWT in the CONNECT auth payload, a "join" event answered
// {"ok":true}, a "publish" event {room, event, data} delivered to the other
// members of the room). It speaks Engine.IO v4 / Socket.IO v5 frames itself
// over github.com/coder/websocket, so the same binary measures bin/gateway and
// the socket.io reference peer in loadtest/peer.
//
// With -protocol centrifugo, the idle, connect and fanout modes measure
// Centrifugo instead (see centrifugo.go): its JSON client protocol over
// /connection/websocket (a connect command with a JWT, a subscribe command
// per subscriber, publications as push messages, several to a websocket
// message one a line), and publishes posted to its HTTP API (POST
// /api/publish with -api-key) by workers of each publisher, one request in
// flight each, started when a publish finds none idle (at most -max-unacked
// per publisher, as for socket.io acks), each answer counting as the
// publish's ack. The published data
// is the same {"t", "seq"} object, and as with socket.io no publisher is a
// subscriber, so latency, the delivery ratio and the closed loop mean the
// same for both.
//
// Modes (one per run; each prints one JSON line with its results):
//
//	loadgen fanout  -targets URL[,URL...]  N subscribers in one room (or spread over
//	                                       -rooms R), P publishers;
//	                                       deliveries/s, delivery ratio, latency
//	loadgen idle    -target URL -pid PID   C idle connections; server RSS per connection
//	loadgen connect -target URL            connects/s with a JWT, K at a time
//	loadgen durable -targets URL[,URL...]  durable user messages through POST /api/v1/emit:
//	                                       stored and delivered/s, loss check by offset,
//	                                       replay of a backlog on reconnect, Redis bytes/message
//	loadgen report  -results FILE          renders docs/BENCHMARKS.md from result lines
//
// Latency is measured from the publish timestamp "t" (Unix nanoseconds, taken
// by the publisher just before the write) to the moment a subscriber's read
// loop has the frame, on the same machine clock. With -pids, fanout and
// connect also report the CPU time the server processes used per delivery or
// per connect (from /proc/<pid>/stat), a figure other work on a shared
// machine disturbs far less than a rate.
//
// # Concurrency
//
// Every connection has exactly one reader goroutine, which owns that
// connection's receive buffer and its per-connection statistics; nothing else
// reads them until the reader has returned (a sync.WaitGroup orders the hand
// over). Publishers have one writer goroutine each; writes from the reader
// (Engine.IO pongs) and from the writer may interleave, which
// websocket.Conn allows. A Centrifugo publisher's writer hands publishes to
// its HTTP workers over an unbuffered channel; it alone starts workers and
// sends, and the channel is closed once it has returned, which ends the
// workers. The workers share the publisher's error counts under a mutex. Cross-goroutine counters are atomics. Every
// goroutine is stopped by closing its connection or cancelling the run's
// context, and every run is bounded: setup, warm-up, measurement and drain
// each have a deadline, and a watchdog ends the process if shutdown itself
// hangs.
package main
