package engineio

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Config configures a Server. The zero value of every field but OnConnection
// is a usable default.
type Config struct {
	// PingInterval is how often the server pings each session. Defaults to 25s.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong before closing
	// the session with reason "ping timeout". Defaults to 20s.
	PingTimeout time.Duration
	// UpgradeTimeout bounds a polling-to-websocket upgrade, from the probe
	// websocket's arrival to its "5" upgrade packet. Defaults to 10s.
	UpgradeTimeout time.Duration
	// WriteTimeout bounds each write to a client: one websocket flush or
	// one polling response. A peer that stops reading is closed as a slow
	// consumer once a write has waited this long. Defaults to 10s.
	WriteTimeout time.Duration
	// MaxPayload is the largest incoming HTTP body or websocket message, in
	// bytes. Defaults to 1_000_000.
	MaxPayload int64
	// MaxQueueBytes caps one connection's send queue, in bytes of queued
	// Frame.Data. Defaults to 4 MiB.
	MaxQueueBytes int
	// Transports lists the allowed transports, a subset of
	// {"polling", "websocket"}. Defaults to both.
	Transports []string
	// DisableUpgrades, when true, makes the OPEN packet advertise no upgrades
	// and refuses upgrade probes.
	DisableUpgrades bool
	// CheckOrigin reports whether the request's Origin header may connect. It
	// is called for every request (the Origin header is empty for
	// non-browser clients). nil allows any origin. A refused origin gets HTTP
	// 403 {"code":4,"message":"Forbidden"}. Allowed browser origins get
	// Access-Control-Allow-Origin: <origin> and
	// Access-Control-Allow-Credentials: true, and OPTIONS preflights are
	// answered with 204.
	CheckOrigin func(r *http.Request) bool
	// AllowRequest is called for every handshake request (new session); an
	// error refuses it with HTTP 403 {"code":4,"message":"Forbidden"}, or,
	// for a *TooManyRequestsError, HTTP 429 {"code":7,"message":"Too many
	// requests"} with Retry-After. The error is logged at debug level, never
	// sent to the client.
	AllowRequest func(r *http.Request) error
	// OnConnection is called once for each new session, before any of its
	// messages is delivered. It must install handlers with Conn.SetHandlers.
	// Required.
	OnConnection func(c *Conn)
	// OnOpen, when set, observes each new session: it is called on the
	// handshake's goroutine once the session is indexed, before
	// OnConnection and before the handshake is answered, so that what it
	// records (the gateway: which node owns a polling session) exists
	// before the client can send a request with the sid. The handshake
	// waits for it. Optional.
	OnOpen func(c *Conn)
	// Logger receives connection-level diagnostics. Defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults of the Config fields left zero. Programs that show or document
// their settings (cmd/gateway) read them from here.
const (
	DefaultPingInterval   = 25 * time.Second
	DefaultPingTimeout    = 20 * time.Second
	DefaultUpgradeTimeout = 10 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultMaxPayload     = 1_000_000
	DefaultMaxQueueBytes  = 4 << 20
)

const (
	transportPolling   = "polling"
	transportWebSocket = "websocket"
)

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.OnConnection == nil {
		return cfg, fmt.Errorf("%w: OnConnection is required", ErrInvalidConfig)
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"PingInterval", &cfg.PingInterval, DefaultPingInterval},
		{"PingTimeout", &cfg.PingTimeout, DefaultPingTimeout},
		{"UpgradeTimeout", &cfg.UpgradeTimeout, DefaultUpgradeTimeout},
		{"WriteTimeout", &cfg.WriteTimeout, DefaultWriteTimeout},
	}
	for _, d := range durations {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < time.Millisecond:
			// The handshake advertises milliseconds: anything shorter
			// would be sent as 0.
			return cfg, fmt.Errorf("%w: %s %v is under 1ms", ErrInvalidConfig, d.name, *d.v)
		}
	}
	switch {
	case cfg.MaxPayload == 0:
		cfg.MaxPayload = DefaultMaxPayload
	case cfg.MaxPayload < 0:
		return cfg, fmt.Errorf("%w: MaxPayload %d is negative", ErrInvalidConfig, cfg.MaxPayload)
	}
	switch {
	case cfg.MaxQueueBytes == 0:
		cfg.MaxQueueBytes = DefaultMaxQueueBytes
	case cfg.MaxQueueBytes < 0:
		return cfg, fmt.Errorf("%w: MaxQueueBytes %d is negative", ErrInvalidConfig, cfg.MaxQueueBytes)
	}
	if len(cfg.Transports) == 0 {
		cfg.Transports = []string{transportPolling, transportWebSocket}
	} else {
		cfg.Transports = append([]string(nil), cfg.Transports...)
		for _, tr := range cfg.Transports {
			if tr != transportPolling && tr != transportWebSocket {
				return cfg, fmt.Errorf("%w: unknown transport %q", ErrInvalidConfig, tr)
			}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}
