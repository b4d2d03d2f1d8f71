package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// idleConfig configures an idle-connections run.
type idleConfig struct {
	// Target is the server's base URL.
	Target string
	// Conns is how many connections to open. Defaults to 15000.
	Conns int
	// PID is the server process whose VmRSS is reported; 0 skips it.
	PID int
	// Sources is the number of loopback source addresses. Defaults to 8.
	Sources int
	// Concurrency is how many connections are set up at once. Defaults to 200.
	Concurrency int
	// Settle is how long the connections are held before RSS is read
	// again. Defaults to 5s.
	Settle time.Duration
	// SetupTimeout bounds opening all connections. Defaults to 120s.
	SetupTimeout time.Duration
	// HandshakeTimeout bounds one dial or CONNECT. Defaults to 15s.
	HandshakeTimeout time.Duration
	// Tokens mints one JWT per connection (sub "idle-<i>").
	Tokens tokens
	// Protocol is the server's wire protocol. Defaults to socketIO.
	Protocol protocol
}

func (c *idleConfig) setDefaults() {
	if c.Conns <= 0 {
		c.Conns = 15000
	}
	if c.Sources <= 0 {
		c.Sources = 8
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 200
	}
	if c.Settle <= 0 {
		c.Settle = 5 * time.Second
	}
	if c.SetupTimeout <= 0 {
		c.SetupTimeout = 120 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 15 * time.Second
	}
	if c.Protocol == nil {
		c.Protocol = socketIO{}
	}
}

// idleResult is the JSON result of an idle run.
type idleResult struct {
	Mode      string           `json:"mode"`
	Target    string           `json:"target"`
	Requested int              `json:"requested"`
	Connected int              `json:"connected"`
	Failed    int              `json:"failed"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	SetupS    float64          `json:"setup_s"`
	// ConnectsPerS is Connected over SetupS (with Concurrency at once).
	ConnectsPerS float64 `json:"connects_per_s"`
	SettleS      float64 `json:"settle_s"`
	// Lost counts connections the server closed while they were held.
	Lost        int64 `json:"lost"`
	PID         int   `json:"pid,omitempty"`
	RSSBeforeKB int64 `json:"rss_before_kb,omitempty"`
	RSSAfterKB  int64 `json:"rss_after_kb,omitempty"`
	// BytesPerConn is (RSS after − RSS before) / Connected.
	BytesPerConn int64 `json:"bytes_per_conn,omitempty"`
}

// runIdle opens the connections, holds them for Settle, and reports the
// server's resident memory growth per connection.
func runIdle(ctx context.Context, cfg idleConfig) (*idleResult, error) {
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

	r := &idleResult{Mode: "idle", Target: cfg.Target, Requested: cfg.Conns, PID: cfg.PID, SettleS: cfg.Settle.Seconds()}
	if cfg.PID > 0 {
		if r.RSSBeforeKB, err = readRSS(cfg.PID); err != nil {
			return nil, err
		}
	}

	var (
		set     connSet
		readers sync.WaitGroup
		closing atomic.Bool
		lost    atomic.Int64
	)
	defer func() {
		closing.Store(true)
		set.closeAll()
		waitGroupTimeout(&readers, 15*time.Second)
	}()
	hold := func(c *conn) {
		defer readers.Done()
		bg := context.Background()
		for {
			p, err := c.read(bg)
			if err != nil {
				if !closing.Load() {
					lost.Add(1)
				}
				return
			}
			if cfg.Protocol.hold(c, p) {
				if !closing.Load() {
					lost.Add(1)
				}
				return
			}
		}
	}

	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	defer cancel()
	failed, es := parallel(sctx, cfg.Conns, cfg.Concurrency, func(ctx context.Context, i int) error {
		tok, err := cfg.Protocol.token(cfg.Tokens, "idle-"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		c, err := cfg.Protocol.open(ctx, d, endpoint, tok, cfg.HandshakeTimeout)
		if err != nil {
			return err
		}
		if !set.add(c) {
			return errSetup
		}
		readers.Add(1)
		go hold(c)
		return nil
	})
	setup := time.Since(start)
	r.Failed = failed
	r.Connected = cfg.Conns - failed
	r.Errors = es.snapshot()
	r.SetupS = round3(setup.Seconds())
	if setup > 0 {
		r.ConnectsPerS = round3(float64(r.Connected) / setup.Seconds())
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("idle interrupted: %w", context.Cause(ctx))
	}
	if !sleepCtx(ctx, cfg.Settle) {
		return nil, fmt.Errorf("idle interrupted: %w", context.Cause(ctx))
	}
	r.Lost = lost.Load()
	if cfg.PID > 0 {
		if r.RSSAfterKB, err = readRSS(cfg.PID); err != nil {
			return nil, err
		}
		if r.Connected > 0 {
			r.BytesPerConn = (r.RSSAfterKB - r.RSSBeforeKB) * 1024 / int64(r.Connected)
		}
	}
	if r.Connected == 0 {
		return r, fmt.Errorf("%w: no connection succeeded: %s", errSetup, es.first())
	}
	return r, nil
}

// readRSS returns VmRSS of a process in kB.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errProc, err)
	}
	return parseVmRSS(b)
}

// parseVmRSS finds "VmRSS:   1234 kB" in a /proc/<pid>/status file.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Bytes()
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("%w: VmRSS line %q", errProc, line)
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: VmRSS line %q", errProc, line)
		}
		return v, nil
	}
	return 0, fmt.Errorf("%w: no VmRSS line", errProc)
}
