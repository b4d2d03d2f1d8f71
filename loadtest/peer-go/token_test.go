package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var testNow = time.Unix(1_800_000_000, 0)

// sign builds an HS256 token (or with another alg header) over claims.
func sign(t testing.TB, secret, alg string, claims any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	v := &verifier{secret: []byte("s3cret"), now: func() time.Time { return testNow }}
	now := float64(testNow.Unix())
	good := sign(t, "s3cret", "HS256", map[string]any{"sub": "alice", "join": "room-*", "publish": []any{"a", 1, "b?"}, "exp": now + 60})
	c, err := v.verify(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sub != "alice" || strings.Join(c.Join, ",") != "room-*" || strings.Join(c.Publish, ",") != "a,b?" {
		t.Fatalf("claims %+v", c)
	}
	for _, tc := range []struct {
		name  string
		token any
		want  string
	}{
		{"missing", nil, "auth: token required"},
		{"not a string", 42.0, "auth: token required"},
		{"two parts", "a.b", "auth: malformed token"},
		{"bad header", "!!.e30.sig", "auth: malformed token header"},
		{"alg none", sign(t, "s3cret", "none", map[string]any{"sub": "a"}), "auth: algorithm not accepted"},
		{"wrong secret", sign(t, "other", "HS256", map[string]any{"sub": "a"}), "auth: bad signature"},
		{"tampered payload", strings.Replace(good, ".", ".x", 1), "auth: bad signature"},
		{"no sub", sign(t, "s3cret", "HS256", map[string]any{"sub": ""}), "auth: token has no sub"},
		{"payload not an object", sign(t, "s3cret", "HS256", []int{1}), "auth: malformed token payload"},
		{"expired", sign(t, "s3cret", "HS256", map[string]any{"sub": "a", "exp": now}), "auth: token expired"},
		{"exp not a number", sign(t, "s3cret", "HS256", map[string]any{"sub": "a", "exp": "soon"}), "auth: token expired"},
		{"not yet", sign(t, "s3cret", "HS256", map[string]any{"sub": "a", "nbf": now + 1}), "auth: token not valid yet"},
	} {
		if _, err := v.verify(tc.token); err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := v.verify(sign(t, "s3cret", "HS256", map[string]any{"sub": "a", "nbf": now})); err != nil {
		t.Errorf("nbf = now refused: %v", err)
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"room-*", "room-1", true},
		{"room-*", "room-", true},
		{"room-*", "roo", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "aéc", true}, // one character, two bytes
		{"*-b-*", "a-b-c-b-d", true},
		{"*x", "aaaa", false},
		{"a.b", "aXb", false}, // literal dot
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"**", "z", true},
	} {
		if got := match(tc.pattern, tc.s); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
