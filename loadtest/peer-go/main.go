// Command peer-go is the socket.io Go port (github.com/zishang520/socket.io,
// servers/socket v3) serving the client contract of loadtest/peer/server.js,
// a peer for the side-by-side benchmarks (scripts/bench.sh, setup gsio1):
//
//   - CONNECT carries auth {token: <JWT HS256 {sub, join, publish, exp}>},
//     checked with the standard library (HMAC-SHA256, constant-time compare,
//     exp/nbf); a refusal is a CONNECT_ERROR with a message. Every socket
//     joins "user:<sub>".
//   - "join" (room name or {room}) + ack -> {ok:true} or {error:{code,message}}
//   - "leave" (room name or {room}) + ack -> {ok:true}
//   - "publish" {room|rooms, event, data} + ack -> every OTHER socket of the
//     rooms receives event with (data, {room, user}); ack {ok:true}
//
// Single node only. It lives in its own module so that Roomcast's module
// does not depend on the port.
//
// Environment:
//
//	PORT        listen port (default 3000; 0 picks one)
//	HOST        listen address (default 127.0.0.1)
//	JWT_SECRET  HS256 secret (required)
//
// It prints one line "listening <port>" once ready, and exits 0 on SIGTERM
// or SIGINT after closing the server.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "peer-go:", err)
		os.Exit(2)
	}
}

func run() error {
	host, port := envOr("HOST", "127.0.0.1"), envOr("PORT", "3000")
	secret := os.Getenv("JWT_SECRET")
	if secret == "" {
		return errors.New("JWT_SECRET is required")
	}
	io := newServer(&verifier{secret: []byte(secret), now: time.Now})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-served:
		return err
	}
	// Close the sockets, then the listener; bounded like the Node peer's 3 s.
	io.Close(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
