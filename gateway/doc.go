// Package gateway is Roomcast's standalone mode: a Socket.IO server that needs
// no application code. Clients authenticate with a JWT (or anonymously when
// allowed), join and leave rooms and publish to them by permission through
// reserved events; backends publish through the HTTP API. cmd/gateway wires a
// Gateway from flags, runs it and drains it on SIGTERM.
//
// # Concurrency
//
// A Gateway is safe for concurrent use. Reserved events run on the
// connection's read loop like any Socket.IO handler; HTTP handlers run on
// net/http's goroutines. Run owns the two listeners; Shutdown stops them.
package gateway
