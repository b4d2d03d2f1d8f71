package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// claims are what a verified token grants: the user, and the room patterns
// it may join and publish to.
type claims struct {
	Sub     string
	Join    []string
	Publish []string
}

// verifier checks HS256 tokens the way loadtest/peer/server.js does; the
// error's text is what the client sees in its CONNECT_ERROR.
type verifier struct {
	secret []byte
	now    func() time.Time
}

func (v *verifier) verify(token any) (*claims, error) {
	s, ok := token.(string)
	if !ok {
		return nil, errors.New("auth: token required")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errors.New("auth: malformed token")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if b, err := b64url(parts[0]); err != nil || json.Unmarshal(b, &header) != nil {
		return nil, errors.New("auth: malformed token header")
	}
	if header.Alg != "HS256" {
		return nil, errors.New("auth: algorithm not accepted")
	}
	mac := hmac.New(sha256.New, v.secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	got, err := b64url(parts[2])
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) { // constant time
		return nil, errors.New("auth: bad signature")
	}
	var payload map[string]any
	b, err := b64url(parts[1])
	if err != nil || json.Unmarshal(b, &payload) != nil || payload == nil {
		return nil, errors.New("auth: malformed token payload")
	}
	sub, _ := payload["sub"].(string)
	if sub == "" {
		return nil, errors.New("auth: token has no sub")
	}
	now := float64(v.now().UnixNano()) / 1e9
	if exp, ok := payload["exp"]; ok {
		if f, isNum := exp.(float64); !isNum || now >= f {
			return nil, errors.New("auth: token expired")
		}
	}
	if nbf, ok := payload["nbf"]; ok {
		if f, isNum := nbf.(float64); !isNum || now < f {
			return nil, errors.New("auth: token not valid yet")
		}
	}
	return &claims{Sub: sub, Join: patterns(payload["join"]), Publish: patterns(payload["publish"])}, nil
}

// b64url decodes base64url with or without padding, as Node's
// Buffer.from(s, "base64url") does.
func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// patterns reads a claim that is one pattern or a list of them; entries
// that are not strings are dropped.
func patterns(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, p := range v {
			if s, ok := p.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// allowed reports whether room matches one of the patterns.
func allowed(patterns []string, room string) bool {
	for _, p := range patterns {
		if match(p, room) {
			return true
		}
	}
	return false
}

// match is a glob match: '*' matches any run of characters, '?' exactly
// one character (code point); everything else is literal.
func match(pattern, s string) bool {
	// Iterative with one backtrack point: the last '*' seen.
	var starP, starS = -1, 0
	p, i := 0, 0
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starS = p, i
				p++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[i:])
				p, i = p+1, i+n
				continue
			default:
				if c == s[i] {
					p, i = p+1, i+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last '*' swallow one more character and retry.
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		p, i = starP+1, starS
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
