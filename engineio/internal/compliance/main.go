// Command compliance serves an echo Engine.IO server for the official
// Engine.IO v4 protocol test suite (docs/engine.io-protocol/v4-test-suite in
// the socket.io repository): mounted at /engine.io/ on port 3000 of the
// loopback interfaces, pingInterval 300ms, pingTimeout 200ms, maxPayload 1e6.
//
//	go run ./engineio/internal/compliance
//	cd v4-test-suite && npx mocha test-suite.js
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/roomcast/roomcast/engineio"
)

func main() {
	addrs := flag.String("addr", "127.0.0.1:3000,[::1]:3000", "comma-separated listen addresses")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	srv, err := engineio.New(engineio.Config{
		PingInterval: 300 * time.Millisecond,
		PingTimeout:  200 * time.Millisecond,
		MaxPayload:   1_000_000,
		Logger:       logger,
		OnConnection: func(c *engineio.Conn) {
			c.SetHandlers(engineio.Handlers{
				OnMessage: func(data []byte, binary bool) {
					var f engineio.Frame
					if binary {
						f = engineio.BinaryFrame(data)
					} else {
						f = engineio.TextFrame(string(data))
					}
					_ = c.Send(f)
				},
				OnClose: func(reason engineio.Reason, err error) {
					logger.Debug("closed", "sid", c.ID(), "reason", reason, "err", err)
				},
			})
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", srv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 4)
	served := 0
	for _, addr := range strings.Split(*addrs, ",") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			logger.Warn("listen failed", "addr", addr, "err", err)
			continue
		}
		logger.Info("listening", "addr", ln.Addr().String())
		served++
		go func() { errc <- hs.Serve(ln) }()
	}
	if served == 0 {
		log.Fatal("no address to listen on")
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve failed", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("engine shutdown", "err", err)
	}
	if err := hs.Shutdown(sctx); err != nil {
		logger.Warn("http shutdown", "err", err)
	}
}
