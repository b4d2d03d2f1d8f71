package ratelimit

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r: r.RemoteAddr,
// unless that is a trusted proxy (in one of the trusted prefixes); then the
// right-most X-Forwarded-For address that is not itself trusted, reading the
// header's lines and entries from the last one back. Entries may be
// "addr", "addr:port" or "[v6addr]:port"; empty entries are skipped. The
// walk stops at an entry that does not parse, since nothing left of it can
// be attributed: the client is then the last trusted hop reached. When every
// entry is trusted, it is the left-most of them. IPv4-mapped IPv6 addresses
// are unmapped and zones dropped. The zero Addr is returned when RemoteAddr
// itself does not parse.
//
// Only X-Forwarded-For is read (not Forwarded or X-Real-IP). A client
// reaching the gateway directly cannot choose its address: only headers
// written to the right of it by trusted proxies are believed.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr, ok := parseHost(r.RemoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !isTrusted(addr, trusted) {
		return addr
	}
	lines := r.Header.Values("X-Forwarded-For")
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for rest != "" {
			var entry string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				entry, rest = rest, ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			hop, ok := parseHost(entry)
			if !ok {
				return addr
			}
			if !isTrusted(hop, trusted) {
				return hop
			}
			addr = hop
		}
	}
	return addr
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHost parses "addr", "addr:port" or "[addr]:port" (the port is not
// checked beyond being present), unmapping IPv4-in-IPv6 and dropping zones.
func parseHost(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), true
	}
	// "[v6]" without a port.
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return normalize(a), true
		}
	}
	return netip.Addr{}, false
}

func normalize(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// ParsePrefixes parses a comma-separated list of CIDR prefixes or bare
// addresses (a single host: /32 or /128), as given to a
// --trusted-proxies flag. Spaces around entries are ignored, as are empty
// entries; "" gives nil. Prefixes are masked ("10.1.2.3/8" is 10.0.0.0/8)
// and IPv4-mapped IPv6 ones become IPv4.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(f, "/") {
			var err error
			if p, err = netip.ParsePrefix(f); err != nil {
				return nil, fmt.Errorf("ratelimit: trusted proxy %q: %w", f, err)
			}
			if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			}
		} else {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("ratelimit: trusted proxy %q: %w", f, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("ratelimit: trusted proxy %q: zones are not allowed", f)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
