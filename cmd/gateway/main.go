// Command gateway runs one Roomcast gateway node. See `gateway --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/gateway"
)

func main() {
	cfg, level, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(2)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintln(os.Stderr, "gateway: --log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	redis.SetLogger(gateway.RedisLogger{Log: log})
	if err := run(cfg, log); err != nil {
		log.Error("gateway stopped", "err", err)
		os.Exit(1)
	}
}

func run(cfg gateway.Config, log *slog.Logger) error {
	g, err := gateway.New(cfg, log)
	if err != nil {
		return err
	}
	if _, _, err := g.Listen(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	done := make(chan error, 1)
	go func() { done <- g.Run() }()
	select {
	case err := <-done:
		return err
	case s := <-sig:
		log.Info("signal received, draining", "signal", s.String())
	}
	if err := g.Shutdown(context.Background()); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	return <-done
}
