// Command compliance serves the configuration the official Socket.IO v5
// compliance suite (socket.io monorepo, docs/socket.io-protocol/v5-test-suite)
// expects on localhost:3000. See docs/PROTOCOL.md for how to run the suite.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/socketio"
)

func main() {
	addr := flag.String("addr", "localhost:3000", "listen address")
	flag.Parse()
	srv, err := socketio.New(socketio.Config{
		Engine: engineio.Config{
			PingInterval: 300 * time.Millisecond,
			PingTimeout:  200 * time.Millisecond,
			MaxPayload:   1_000_000,
		},
		ConnectTimeout: time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	srv.Sockets().OnConnection(func(s *socketio.Socket) {
		_ = s.Emit("auth", s.Handshake().Auth)
		s.On("message", func(e *socketio.Event) {
			_ = s.Emit("message-back", e.Args...)
		})
		s.On("message-with-ack", func(e *socketio.Event) {
			_ = e.Ack(e.Args...)
		})
	})
	custom, err := srv.Of("/custom")
	if err != nil {
		log.Fatal(err)
	}
	custom.OnConnection(func(s *socketio.Socket) {
		_ = s.Emit("auth", s.Handshake().Auth)
	})
	http.Handle("/socket.io/", srv)
	log.Printf("socket.io compliance server on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
