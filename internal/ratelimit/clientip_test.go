package ratelimit

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

var testTrusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
	netip.MustParsePrefix("192.0.2.1/32"),
}

func request(remote string, xff ...string) *http.Request {
	r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string // "" is the zero Addr
	}{
		{"direct, no header", "203.0.113.7:5555", nil, "203.0.113.7"},
		{"direct client cannot spoof", "203.0.113.7:5555", []string{"1.1.1.1"}, "203.0.113.7"},
		{"behind a trusted proxy", "10.1.1.1:80", []string{"203.0.113.7"}, "203.0.113.7"},
		{"right-most untrusted wins over a forged left part", "10.1.1.1:80", []string{"6.6.6.6, 203.0.113.7"}, "203.0.113.7"},
		{"two trusted hops", "10.1.1.1:80", []string{"6.6.6.6, 203.0.113.7, 10.2.2.2, 192.0.2.1"}, "203.0.113.7"},
		{"several header lines", "10.1.1.1:80", []string{"6.6.6.6", "203.0.113.7", "10.9.9.9"}, "203.0.113.7"},
		{"spaces and empty entries", "10.1.1.1:80", []string{" ,  203.0.113.7 ,, "}, "203.0.113.7"},
		{"entries with ports", "10.1.1.1:80", []string{"203.0.113.7:1234"}, "203.0.113.7"},
		{"bracketed v6 with port", "10.1.1.1:80", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"bracketed v6 without port", "10.1.1.1:80", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"bare v6", "[fd00::1]:80", []string{"2001:db8::2"}, "2001:db8::2"},
		{"v4-mapped v6 is unmapped", "10.1.1.1:80", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"mapped remote is unmapped", "[::ffff:10.1.1.1]:80", []string{"203.0.113.7"}, "203.0.113.7"},
		{"zone dropped", "10.1.1.1:80", []string{"fe80::1%eth0"}, "fe80::1"},
		{"trusted proxy, no header", "10.1.1.1:80", nil, "10.1.1.1"},
		{"all entries trusted: left-most", "10.1.1.1:80", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"garbage stops the walk", "10.1.1.1:80", []string{"203.0.113.9, garbage, 10.2.2.2"}, "10.2.2.2"},
		{"garbage right after the proxy", "10.1.1.1:80", []string{"203.0.113.9, unknown"}, "10.1.1.1"},
		{"obfuscated identifiers are garbage", "10.1.1.1:80", []string{"_hidden"}, "10.1.1.1"},
		{"out of range octet", "10.1.1.1:80", []string{"203.0.113.300"}, "10.1.1.1"},
		{"remote without port", "203.0.113.7", nil, "203.0.113.7"},
		{"bad remote", "pipe", []string{"203.0.113.7"}, ""},
		{"empty remote", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClientIP(request(tt.remote, tt.xff...), testTrusted)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Fatalf("ClientIP(%q, %q) = %v; want %v", tt.remote, tt.xff, got, want)
			}
		})
	}
}

func TestClientIPNoTrustedProxies(t *testing.T) {
	t.Parallel()
	if got := ClientIP(request("10.1.1.1:80", "203.0.113.7"), nil); got != netip.MustParseAddr("10.1.1.1") {
		t.Fatalf("got %v", got)
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string // prefixes joined by ","
		wantErr bool
	}{
		{"", "", false},
		{" , ", "", false},
		{"10.0.0.0/8", "10.0.0.0/8", false},
		{"10.1.2.3/8, 192.0.2.1 ,fd00::/8", "10.0.0.0/8,192.0.2.1/32,fd00::/8", false},
		{"2001:db8::1", "2001:db8::1/128", false},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", false},
		{"::ffff:10.0.0.1", "10.0.0.1/32", false},
		{"10.0.0.0/33", "", true},
		{"10.0.0.0/8,nope", "", true},
		{"fe80::1%eth0", "", true},
		{"10.0.0.0/", "", true},
	}
	for _, tt := range tests {
		got, err := ParsePrefixes(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParsePrefixes(%q) error %v; want error %v", tt.in, err, tt.wantErr)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, ",") != tt.want {
			t.Errorf("ParsePrefixes(%q) = %v; want %s", tt.in, s, tt.want)
		}
	}
}

// referenceClientIP is ClientIP written the obvious way, with strings.Split
// and every header line joined: the fuzz target's oracle.
func referenceClientIP(remote string, lines []string, trusted []netip.Prefix) netip.Addr {
	addr, ok := parseHost(remote)
	if !ok {
		return netip.Addr{}
	}
	if !isTrusted(addr, trusted) {
		return addr
	}
	entries := strings.Split(strings.Join(lines, ","), ",")
	for i := len(entries) - 1; i >= 0; i-- {
		e := strings.TrimSpace(entries[i])
		if e == "" {
			continue
		}
		hop, ok := parseHost(e)
		if !ok {
			return addr
		}
		if !isTrusted(hop, trusted) {
			return hop
		}
		addr = hop
	}
	return addr
}

func FuzzClientIP(f *testing.F) {
	seeds := []struct {
		remote, xff string
		split       uint8
	}{
		{"10.1.1.1:80", "203.0.113.7", 0},
		{"10.1.1.1:80", "6.6.6.6, 203.0.113.7, 10.2.2.2, 192.0.2.1", 14},
		{"[fd00::1]:80", "[2001:db8::1]:443, fd00::2", 5},
		{"10.1.1.1:80", "::ffff:203.0.113.7 ,, garbage, 10.0.0.9", 20},
		{"203.0.113.7:1", "1.1.1.1", 0},
		{"10.1.1.1:80", "fe80::1%eth0, [::1", 3},
		{"pipe", "", 0},
		{"10.1.1.1:80", ",,,", 1},
	}
	for _, s := range seeds {
		f.Add(s.remote, s.xff, s.split)
	}
	f.Fuzz(func(t *testing.T, remote, xff string, split uint8) {
		// The header arrives as one line, or split in two at a fuzzed place
		// (as a proxy chain that adds its own line would send it).
		var lines []string
		if i := int(split); i > 0 && i < len(xff) {
			lines = []string{xff[:i], xff[i:]}
		} else if xff != "" {
			lines = []string{xff}
		}
		r := request(remote, lines...)
		got := ClientIP(r, testTrusted)
		if want := referenceClientIP(remote, lines, testTrusted); got != want {
			t.Fatalf("ClientIP(%q, %q) = %v; reference says %v", remote, lines, got, want)
		}
		remoteAddr, ok := parseHost(remote)
		switch {
		case !ok:
			if got.IsValid() {
				t.Fatalf("bad remote %q gave %v", remote, got)
			}
		case !isTrusted(remoteAddr, testTrusted):
			if got != remoteAddr {
				t.Fatalf("untrusted remote %v: got %v", remoteAddr, got)
			}
		default:
			// A trusted remote: the answer is the remote or one of the
			// header's entries, normalised.
			if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
				t.Fatalf("got %v (%#v)", got, got)
			}
			found := got == remoteAddr
			for _, e := range strings.Split(strings.Join(lines, ","), ",") {
				if a, ok := parseHost(strings.TrimSpace(e)); ok && a == got {
					found = true
				}
			}
			if !found {
				t.Fatalf("ClientIP(%q, %q) = %v: neither the remote nor an entry", remote, lines, got)
			}
		}
	})
}
