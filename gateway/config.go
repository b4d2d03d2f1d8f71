package gateway

import (
	"errors"
	"time"
)

// Config configures a Gateway. cmd/gateway fills it from flags, ROOMCAST_*
// environment variables and an optional YAML file.
type Config struct {
	// Addr serves clients (/socket.io/), the demo and the HTTP API. Defaults to ":8080".
	Addr string
	// AdminAddr serves /metrics, /healthz and /readyz. Defaults to ":9090".
	AdminAddr string
	// NodeID names this node. Defaults to the hostname plus a random suffix.
	NodeID string
	// JWTSecret enables HS256/384/512 tokens.
	JWTSecret string
	// JWTPublicKey is a PEM public key (RSA or ECDSA P-256) enabling RS256/ES256 tokens.
	JWTPublicKey []byte
	// AllowAnonymous lets clients connect without a token.
	AllowAnonymous bool
	// APIToken is the bearer token of /api/v1/; empty turns the API off.
	APIToken string
	// Origins lists the browser origins allowed to connect; empty allows any.
	Origins []string
	// DrainTimeout bounds Shutdown. Defaults to 10s.
	DrainTimeout time.Duration
	// Demo serves the chat demo at "/".
	Demo bool
	// Namespaces lists the namespaces besides "/" clients may connect to.
	Namespaces []string
	// MaxPayload bounds one incoming message or HTTP body. Defaults to 1 MB.
	MaxPayload int64
	// MaxQueueBytes caps each connection's send queue. Defaults to 4 MiB.
	MaxQueueBytes int
	// EventRate is the sustained number of events per second one connection
	// may send; bursts of twice that are allowed. Defaults to 100.
	EventRate float64
	// PingInterval and PingTimeout tune Engine.IO heartbeats. Default to 25s and 20s.
	PingInterval, PingTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = ":9090"
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 1_000_000
	}
	if c.EventRate <= 0 {
		c.EventRate = 100
	}
	if c.NodeID == "" {
		c.NodeID = defaultNodeID()
	}
}

func (c *Config) validate() error {
	if c.JWTSecret == "" && len(c.JWTPublicKey) == 0 && !c.AllowAnonymous {
		return errors.New("gateway: no way to authenticate: set --jwt-secret, --jwt-public-key or --allow-anonymous")
	}
	for _, ns := range c.Namespaces {
		if ns == "" || ns[0] != '/' {
			return errors.New("gateway: namespace names start with '/'")
		}
	}
	return nil
}
