package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"unicode/utf8"
)

// checkFailure fails unless a refused token's error wraps exactly one
// sentinel and came with no claims.
func checkFailure(t *testing.T, c *Claims, err error) {
	t.Helper()
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 || c != nil {
		t.Fatalf("Verify = %+v, %v: want nil claims and exactly one sentinel", c, err)
	}
}

// checkSuccess checks the invariants of accepted claims.
func checkSuccess(t *testing.T, c *Claims) {
	t.Helper()
	if c == nil || c.Subject == "" || c.Raw["sub"] != c.Subject {
		t.Fatalf("accepted claims break invariants: %+v", c)
	}
}

// FuzzVerify feeds arbitrary tokens to verifiers holding every kind of key.
// Seeds are real tokens of every algorithm, hostile headers and garbage. A
// token is also fed cut in two at a fuzzed offset: no strict prefix of a valid
// token may verify.
func FuzzVerify(f *testing.F) {
	k := keys(f)
	now := fmt.Sprint(testNow.Unix() + 60)
	payload := `{"sub":"u","exp":` + now + `,"join":["room:*"],"publish":"room:a"}`
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		f.Add(signRaw(f, alg, testSecret, hdr(alg), payload), 10)
	}
	f.Add(signRaw(f, "RS256", k.rsa, hdr("RS256"), payload), 40)
	f.Add(signRaw(f, "ES256", k.ec, hdr("ES256"), payload), 80)
	f.Add(signRaw(f, "none", nil, hdr("none"), payload), 5)
	f.Add(signRaw(f, "HS256", k.rsaPEM, hdr("HS256"), payload), 20)
	f.Add(signRaw(f, "HS256", testSecret, `{"alg":"HS256","crit":["x"]}`, payload), 0)
	f.Add(signRaw(f, "HS256", testSecret, hdr("HS256"), `{"sub":"u","exp":"soon"}`), 3)
	f.Add(signRaw(f, "HS256", testSecret, hdr("HS256"), `{"sub":"u","join":[1]}`), 7)
	f.Add("", 0)
	f.Add("..", 1)
	f.Add("e30.e30.", 4)
	f.Add("a.b.c.d", 2)

	vHS := newVerifier(f, Config{Secret: testSecret, PublicKey: &k.rsa.PublicKey})
	vEC := newVerifier(f, Config{Secret: testSecret, PublicKey: &k.ec.PublicKey})
	f.Fuzz(func(t *testing.T, token string, cut int) {
		for _, v := range []*Verifier{vHS, vEC} {
			c, err := v.Verify(token)
			if err != nil {
				checkFailure(t, c, err)
				continue
			}
			checkSuccess(t, c)
			if cut > 0 && cut < len(token) {
				if c, err := v.Verify(token[:cut]); err == nil {
					t.Fatalf("prefix %q of valid token %q verified: %+v", token[:cut], token, c)
				}
			}
		}
	})
}

// FuzzVerifyClaims reaches the claim decoder: it signs arbitrary header and
// payload bytes with the right secret, so the signature always holds.
func FuzzVerifyClaims(f *testing.F) {
	for _, seed := range []struct{ header, payload string }{
		{hdr("HS256"), `{"sub":"u","join":["room:*"],"publish":"room:a","exp":1700000060,"nbf":1699999990}`},
		{hdr("HS256"), `{"sub":"u","exp":1.7000000605e9,"join":"a"}`},
		{hdr("HS256"), `{"sub":"","join":[null]}`},
		{hdr("HS256"), `{"sub":"u","exp":1e400}`},
		{hdr("HS256"), `{"sub":"u","exp":-62135596800}`},
		{hdr("HS256"), `null`},
		{`{"alg":"HS256","crit":[]}`, `{"sub":"u"}`},
		{`{"alg":"none"}`, `{"sub":"u"}`},
		{`{"alg":"HS256","alg":"RS256"}`, `{"sub":"u"}`},
		{`[]`, `{}`},
	} {
		f.Add([]byte(seed.header), []byte(seed.payload))
	}
	v := newVerifier(f, Config{Secret: testSecret})
	enc := base64.RawURLEncoding
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		input := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
		mac := hmac.New(sha256.New, testSecret)
		mac.Write([]byte(input))
		token := input + "." + enc.EncodeToString(mac.Sum(nil))
		c, err := v.Verify(token)
		if err != nil {
			checkFailure(t, c, err)
			if errors.Is(err, ErrSignature) {
				t.Fatalf("correctly signed token refused with %v", err)
			}
			return
		}
		checkSuccess(t, c)
		for _, p := range append(append([]string{}, c.Join...), c.Publish...) {
			if !Match(p, p) && !containsWildcard(p) {
				t.Fatalf("literal pattern %q does not match itself", p)
			}
		}
	})
}

func containsWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}

// FuzzMatch checks that Match never panics and, on valid UTF-8, agrees with
// the dynamic-programming oracle. The name is also checked split in two
// around a star: pattern "a*b" must match a+anything+b.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"room:*", "room:general"},
		{"*", ""},
		{"a*b*c", "aXbYc"},
		{"team:?", "team:é"},
		{"*?日?*", "a日b"},
		{"a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa"},
		{"?\xff*", "\xff\xfe"},
		{"user:*:inbox", "user:42:inbox"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := Match(pattern, name)
		if utf8.ValidString(pattern) && utf8.ValidString(name) && len(pattern) <= 64 && len(name) <= 256 {
			if want := matchOracle(pattern, name); got != want {
				t.Fatalf("Match(%q, %q) = %v, oracle says %v", pattern, name, got, want)
			}
		}
		if !containsWildcard(pattern) && got != (pattern == name) {
			t.Fatalf("literal Match(%q, %q) = %v", pattern, name, got)
		}
		// Any split of name around a star matches "head*tail".
		if !containsWildcard(name) && len(name) > 0 {
			cut := len(pattern) % (len(name) + 1)
			if !Match(name[:cut]+"*"+name[cut:], name) {
				t.Fatalf("Match(%q, %q) = false", name[:cut]+"*"+name[cut:], name)
			}
		}
	})
}
