package auth

import (
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
		{hdr("HS256"), `{"sub":"u","dm":["support-?","u2"],"publish":"user:*"}`},
		{hdr("HS256"), `{"sub":"u","dm":"u*","aud":["roomcast"],"iss":"x"}`},
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
		for _, p := range append(append(append([]string{}, c.Join...), c.Publish...), c.DM...) {
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

// FuzzJWKS feeds arbitrary documents to the JWK Set decoder. Seeds are real
// JWKS documents — our test keys in the shapes identity providers publish,
// the node-encoded interop set — and every kind of key the decoder must
// skip. Invariants: a refused document wraps ErrKeySet and is never valid
// JSON with a usable key; an accepted one holds 1..maxJWKSKeys keys, each
// RS256-usable (2048..8192 bits, odd exponent) or on P-256, each of which
// re-encodes to a JWK that decodes to the same key.
func FuzzJWKS(f *testing.F) {
	k := keys(f)
	r, e := rsaJWK(&k.rsa.PublicKey, "r1"), ecJWK(f, &k.ec.PublicKey, "e1")
	// Shaped like Google's and Auth0's published sets (x5c is ignored).
	google := with(r, "kid", "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")
	auth0 := with(r, "kid", "NjVBRjY5MDlCMUIwNzU4RTA2QzZFMDQ4QzQ2MDAyQjVDNjk1RTM2Qg",
		"x5t", "NjVBRjY5MDlCMUIwNzU4RTA2QzZFMDQ4QzQ2MDAyQjVDNjk1RTM2Qg", "x5c", []string{"MIIDBzCCAe+gAwIBAgIJakoPho0MJr56MA0GCSqGSIb3DQEBCwUA"})
	for _, doc := range [][]byte{
		jwksDoc(f, r, e),
		jwksDoc(f, google, with(rsaJWK(&k.rsa2.PublicKey, "b2"), "use", nil)),
		jwksDoc(f, auth0),
		jwksDoc(f, with(e, "alg", nil, "use", nil, "key_ops", []string{"verify"})),
		jwksDoc(f, map[string]any{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}, r),
		jwksDoc(f, with(r, "d", "AQAB"), with(e, "crv", "P-384"), with(r, "alg", "RS512"), with(e, "y", "AAAA")),
		jwksDoc(f),
		[]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`),
		[]byte(`{"keys":[null,1,"x",[],{}]}`),
		[]byte(`{"keys":{}}`),
		[]byte(`[]`),
		[]byte(``),
	} {
		f.Add(doc)
	}
	if doc, err := os.ReadFile("testdata/interop-jwks.json"); err == nil {
		f.Add(doc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := parseJWKS(data)
		if err != nil {
			if set != nil || !errors.Is(err, ErrKeySet) {
				t.Fatalf("parseJWKS = %+v, %v: want nil and ErrKeySet", set, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("invalid JSON accepted: %q", data)
		}
		if len(set.keys) == 0 || len(set.keys)+set.skipped > maxJWKSKeys {
			t.Fatalf("accepted set has %d keys, %d skipped", len(set.keys), set.skipped)
		}
		for _, key := range set.keys {
			var again map[string]any
			switch {
			case key.rsa != nil && key.ec == nil:
				if n := key.rsa.N.BitLen(); n < MinRSABits || n > maxRSABits || key.rsa.E < 3 || key.rsa.E%2 == 0 {
					t.Fatalf("unusable RSA key accepted: %d bits, e=%d", n, key.rsa.E)
				}
				again = rsaJWK(key.rsa, key.kid)
			case key.ec != nil && key.rsa == nil:
				if key.ec.Curve != elliptic.P256() {
					t.Fatalf("EC key on %s accepted", key.ec.Curve.Params().Name)
				}
				again = ecJWK(t, key.ec, key.kid)
			default:
				t.Fatalf("key with rsa %v and ec %v", key.rsa != nil, key.ec != nil)
			}
			re, err := parseJWKS(jwksDoc(t, again))
			if err != nil || len(re.keys) != 1 || re.keys[0].kid != key.kid ||
				(key.rsa != nil && !key.rsa.Equal(re.keys[0].rsa)) || (key.ec != nil && !key.ec.Equal(re.keys[0].ec)) {
				t.Fatalf("key %+v does not survive re-encoding: %+v, %v", key, re, err)
			}
		}
	})
}
