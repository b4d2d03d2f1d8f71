package gateway

import (
	"crypto/tls"
	"net"
)

func tlsConfigFor(addrs []string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(addrs) > 0 {
		if host, _, err := net.SplitHostPort(addrs[0]); err == nil {
			cfg.ServerName = host
		}
	}
	return cfg
}
