package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// connectConfig configures a connect-rate run.
type connectConfig struct {
	// Target is the server's base URL.
	Target string
	// Concurrency is how many connects are in progress at once. Defaults to 64.
	Concurrency int
	// Duration is how long to keep connecting. Defaults to 10s.
	Duration time.Duration
	// Sources is the number of loopback source addresses. Defaults to 8.
	Sources int
	// Users is how many distinct token subjects are used, round-robin.
	// Defaults to 1000.
	Users int
	// HandshakeTimeout bounds one whole connect. Defaults to 10s.
	HandshakeTimeout time.Duration
	// Tokens mints the JWTs.
	Tokens tokens
	// PIDs are server processes whose CPU time over the run is reported.
	PIDs []int
	// Protocol is the server's wire protocol. Defaults to socketIO.
	Protocol protocol
}

func (c *connectConfig) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Sources <= 0 {
		c.Sources = 8
	}
	if c.Users <= 0 {
		c.Users = 1000
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.Protocol == nil {
		c.Protocol = socketIO{}
	}
}

// connectResult is the JSON result of a connect-rate run.
type connectResult struct {
	Mode        string  `json:"mode"`
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	// Connects completed the whole exchange: websocket, OPEN, CONNECT with
	// the token, CONNECT reply. ConnectsPerS is their rate.
	Connects     int64            `json:"connects"`
	ConnectsPerS float64          `json:"connects_per_s"`
	Failed       int64            `json:"failed"`
	Errors       map[string]int64 `json:"errors,omitempty"`
	Latency      latencySummary   `json:"latency"`
	// CPU is the servers' (-pids) and loadgen's CPU time over the run.
	CPU *cpuUsage `json:"cpu,omitempty"`
}

// runConnect opens, authenticates and closes connections with Concurrency
// workers for Duration.
func runConnect(ctx context.Context, cfg connectConfig) (*connectResult, error) {
	cfg.setDefaults()
	endpoint, err := cfg.Protocol.endpoint(cfg.Target)
	if err != nil {
		return nil, err
	}
	src, err := sourceRange(cfg.Target, cfg.Sources)
	if err != nil {
		return nil, err
	}
	d := newDialer(src, cfg.HandshakeTimeout)
	defer d.close()
	toks := make([]string, cfg.Users)
	for i := range toks {
		if toks[i], err = cfg.Protocol.token(cfg.Tokens, "user-"+strconv.Itoa(i)); err != nil {
			return nil, err
		}
	}

	type worker struct {
		hist     histogram
		connects int64
		failed   int64
	}
	workers := make([]*worker, cfg.Concurrency)
	es := &errorSample{}
	rctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	meter := cpuMeter{pids: cfg.PIDs}
	if err := meter.begin(); err != nil {
		return nil, err
	}
	start := time.Now()
	for w := range workers {
		wk := &worker{}
		workers[w] = wk
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := w; rctx.Err() == nil; n += cfg.Concurrency {
				t0 := time.Now()
				err := connectOnce(rctx, cfg.Protocol, d, endpoint, toks[n%len(toks)], cfg.HandshakeTimeout)
				if err != nil {
					if rctx.Err() != nil {
						return // the run ended mid-connect: not a server failure
					}
					wk.failed++
					es.add(err)
					continue
				}
				wk.hist.record(time.Since(t0))
				wk.connects++
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := meter.end(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("connect interrupted: %w", context.Cause(ctx))
	}
	r := &connectResult{Mode: "connect", Target: cfg.Target, Concurrency: cfg.Concurrency, DurationS: round3(elapsed.Seconds())}
	var h histogram
	for _, wk := range workers {
		r.Connects += wk.connects
		r.Failed += wk.failed
		h.merge(&wk.hist)
	}
	r.Errors = es.snapshot()
	r.Latency = h.summary()
	r.ConnectsPerS = math.Round(float64(r.Connects) / elapsed.Seconds())
	r.CPU = meter.usage(r.Connects)
	return r, nil
}

// connectOnce runs one full connect and closes the connection.
func connectOnce(ctx context.Context, proto protocol, d *dialer, endpoint, token string, timeout time.Duration) error {
	c, err := proto.open(ctx, d, endpoint, token, timeout)
	if err != nil {
		return err
	}
	c.close()
	return nil
}
