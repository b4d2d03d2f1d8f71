package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rsaJWK encodes pub as a JWK with kid (omitted when empty) and the usual
// "use" and "alg".
func rsaJWK(pub *rsa.PublicKey, kid string) map[string]any {
	m := map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256",
		"n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes()),
	}
	if kid != "" {
		m["kid"] = kid
	}
	return m
}

func ecJWK(tb testing.TB, pub *ecdsa.PublicKey, kid string) map[string]any {
	tb.Helper()
	pt, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string]any{
		"kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256",
		"x": b64u(pt[1:33]), "y": b64u(pt[33:]),
	}
	if kid != "" {
		m["kid"] = kid
	}
	return m
}

// with returns a copy of m with the given members set (nil deletes).
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func jwksDoc(tb testing.TB, keys ...map[string]any) []byte {
	tb.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// jwksServer serves a JWKS document that a test can swap, break or slow
// down, and counts the requests it gets.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64
	quit chan struct{} // closed at cleanup: releases slow handlers

	mu        sync.Mutex
	status    int
	body      []byte
	delay     time.Duration // before the response headers
	trickle   bool          // send the body one byte per delay instead
	chunked   bool          // no Content-Length
	reqHeader http.Header
}

func newJWKSServer(tb testing.TB, body []byte) *jwksServer {
	tb.Helper()
	s := &jwksServer{status: http.StatusOK, body: body, quit: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	tb.Cleanup(func() { close(s.quit) }) // runs first: cleanups are LIFO
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	status, body, delay, trickle, chunked := s.status, s.body, s.delay, s.trickle, s.chunked
	s.reqHeader = r.Header.Clone()
	s.mu.Unlock()
	wait := func() bool {
		select {
		case <-time.After(delay):
			return true
		case <-r.Context().Done():
		case <-s.quit:
		}
		return false
	}
	if delay > 0 && !trickle && !wait() {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if !chunked && !trickle {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	}
	w.WriteHeader(status)
	if !trickle {
		w.Write(body)
		return
	}
	for i := range body {
		w.Write(body[i : i+1])
		w.(http.Flusher).Flush()
		if !wait() {
			return
		}
	}
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

func (s *jwksServer) slow(delay time.Duration, trickle bool) {
	s.mu.Lock()
	s.delay, s.trickle = delay, trickle
	s.mu.Unlock()
}

// newKeySet returns a KeySet for srv, closed at cleanup (before srv).
func newKeySet(tb testing.TB, srv *jwksServer, cfg KeySetConfig) *KeySet {
	tb.Helper()
	cfg.URL = srv.URL + "/.well-known/jwks.json"
	if cfg.Client == nil {
		cfg.Client = srv.Client()
	}
	ks, err := NewKeySet(cfg)
	if err != nil {
		tb.Fatalf("NewKeySet: %v", err)
	}
	tb.Cleanup(func() {
		if err := ks.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return ks
}

// fakeClock is a settable clock for KeySet's rate limit.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// hdrKid is the JOSE header for alg with a kid.
func hdrKid(alg, kid string) string { return `{"alg":"` + alg + `","typ":"JWT","kid":"` + kid + `"}` }

func goodPayload() string {
	return fmt.Sprintf(`{"sub":"u1","exp":%d,"join":"room:*"}`, testNow.Unix()+60)
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	k := keys(t)
	r, e := rsaJWK(&k.rsa.PublicKey, "r"), ecJWK(t, &k.ec.PublicKey, "e")
	small, err := rsa.GenerateKey(randReader{}, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ept, _ := k.ec.PublicKey.Bytes()
	ecPriv, err := k.ec.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	offCurve := append([]byte(nil), ept[33:]...)
	offCurve[31] ^= 1

	usable := []struct {
		name string
		key  map[string]any
	}{
		{"rsa", r},
		{"ec", e},
		{"rsa without use, alg, kid", with(r, "use", nil, "alg", nil, "kid", nil)},
		{"ec without use, alg, kid", with(e, "use", nil, "alg", nil, "kid", nil)},
		{"key_ops verify", with(r, "key_ops", []string{"verify"})},
		{"padded base64", with(r, "e", "AQAB=")},
		{"extra members", with(r, "x5t", "abc", "x5c", []string{"MII..."}, "ext", true)},
	}
	for _, tt := range usable {
		set, err := parseJWKS(jwksDoc(t, tt.key))
		if err != nil || len(set.keys) != 1 || set.skipped != 0 {
			t.Errorf("%s: parseJWKS = %+v, %v; want one usable key", tt.name, set, err)
			continue
		}
		if got := set.keys[0]; (got.rsa != nil) == (got.ec != nil) {
			t.Errorf("%s: key has rsa %v, ec %v", tt.name, got.rsa != nil, got.ec != nil)
		}
	}

	skipped := []struct {
		name string
		key  any
	}{
		{"use enc", with(r, "use", "enc")},
		{"use number", with(r, "use", 1)},
		{"key_ops encrypt", with(r, "key_ops", []string{"encrypt"})},
		{"key_ops string", with(r, "key_ops", "verify")},
		{"rsa alg RS512", with(r, "alg", "RS512")},
		{"rsa alg PS256", with(r, "alg", "PS256")},
		{"rsa alg HS256", with(r, "alg", "HS256")},
		{"rsa alg ES256", with(r, "alg", "ES256")},
		{"ec alg RS256", with(e, "alg", "RS256")},
		{"ec alg ES384", with(e, "alg", "ES384")},
		{"alg number", with(r, "alg", 256)},
		{"kid number", with(r, "kid", 7)},
		{"kty oct", map[string]any{"kty": "oct", "k": b64u(testSecret), "alg": "HS256"}},
		{"kty OKP", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64u(make([]byte, 32))}},
		{"kty missing", with(r, "kty", nil)},
		{"kty lower case", with(r, "kty", "rsa")},
		{"rsa 1024 bits", rsaJWK(&small.PublicKey, "small")},
		{"rsa even exponent", with(r, "e", b64u([]byte{4}))},
		{"rsa exponent 1", with(r, "e", "AQ")},
		{"rsa exponent 5 bytes", with(r, "e", b64u([]byte{1, 0, 0, 0, 1}))},
		{"rsa exponent 2^31+1", with(r, "e", b64u([]byte{0x80, 0, 0, 1}))},
		{"rsa 8200 bits", with(r, "n", b64u(append([]byte{1}, make([]byte, 1025)...)))},
		{"rsa n missing", with(r, "n", nil)},
		{"rsa n empty", with(r, "n", "")},
		{"rsa n standard base64", with(r, "n", base64.StdEncoding.EncodeToString(k.rsa.N.Bytes()))},
		{"rsa n number", with(r, "n", 12345)},
		{"rsa private", with(r, "d", b64u(k.rsa.D.Bytes()))},
		{"ec private", with(e, "d", b64u(ecPriv))},
		{"ec P-384", with(e, "crv", "P-384")},
		{"ec crv missing", with(e, "crv", nil)},
		{"ec x short", with(e, "x", b64u(ept[2:33]))},
		{"ec y long", with(e, "y", b64u(append([]byte{0}, ept[33:]...)))},
		{"ec off curve", with(e, "y", b64u(offCurve))},
		{"ec zero point", with(e, "x", b64u(make([]byte, 32)), "y", b64u(make([]byte, 32)))},
		{"not an object", "RSA"},
		{"null", nil},
	}
	for _, tt := range skipped {
		doc, err := json.Marshal(map[string]any{"keys": []any{tt.key, r}})
		if err != nil {
			t.Fatal(err)
		}
		set, err := parseJWKS(doc)
		if err != nil || len(set.keys) != 1 || set.keys[0].kid != "r" || set.skipped != 1 {
			t.Errorf("%s: parseJWKS = %+v, %v; want the key skipped and the good one kept", tt.name, set, err)
		}
		if _, err := parseJWKS(doc[:0]); err == nil {
			t.Fatal("empty document parsed")
		}
		only, _ := json.Marshal(map[string]any{"keys": []any{tt.key}})
		if _, err := parseJWKS(only); !errors.Is(err, ErrKeySet) {
			t.Errorf("%s alone: parseJWKS error = %v, want ErrKeySet (no usable key)", tt.name, err)
		}
	}

	many := make([]map[string]any, maxJWKSKeys+1)
	for i := range many {
		many[i] = rsaJWK(&k.rsa.PublicKey, fmt.Sprint(i))
	}
	for _, doc := range []string{
		``, `null`, `[]`, `"keys"`, `{}`, `{"keys":null}`, `{"keys":{}}`, `{"keys":"x"}`,
		`{"keys":[]}`, `{"keys":[{}]}`, `{"keys":[` + string(mustJSON(t, r)) + `]`,
		string(jwksDoc(t, many...)),
	} {
		if set, err := parseJWKS([]byte(doc)); !errors.Is(err, ErrKeySet) {
			t.Errorf("parseJWKS(%.60q) = %+v, %v; want ErrKeySet", doc, set, err)
		}
	}
	if set, err := parseJWKS(jwksDoc(t, many[:maxJWKSKeys]...)); err != nil || len(set.keys) != maxJWKSKeys {
		t.Errorf("document of %d keys: %v", maxJWKSKeys, err)
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// randReader is a deterministic stand-in for crypto/rand where key quality
// does not matter (a 1024-bit key that must be refused).
type randReader struct{}

func (randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return len(p), nil
}

// TestKeySetVerify covers key selection by kid and the algorithm confusions
// a key set could open: the key's type, never the header, decides.
func TestKeySetVerify(t *testing.T) {
	t.Parallel()
	k := keys(t)
	srv := newJWKSServer(t, jwksDoc(t, rsaJWK(&k.rsa.PublicKey, "r1"), ecJWK(t, &k.ec.PublicKey, "e1")))
	ks := newKeySet(t, srv, KeySetConfig{MinRefetchInterval: time.Hour})
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, Config{KeySet: ks})
	if got := fmt.Sprint(v.Algorithms()); got != "[RS256 ES256]" {
		t.Errorf("Algorithms = %s", got)
	}
	good, evil := goodPayload(), `{"sub":"admin","join":"*","publish":"*"}`
	modulus := k.rsa.N.Bytes()
	ecPoint, _ := k.ec.PublicKey.Bytes()
	attackerJWK := string(mustJSON(t, rsaJWK(&k.rsa2.PublicKey, "r1")))

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"RS256 kid", signRaw(t, "RS256", k.rsa, hdrKid("RS256", "r1"), good), nil},
		{"ES256 kid", signRaw(t, "ES256", k.ec, hdrKid("ES256", "e1"), good), nil},
		{"RS256 no kid", signRaw(t, "RS256", k.rsa, hdr("RS256"), good), nil},
		{"ES256 no kid", signRaw(t, "ES256", k.ec, hdr("ES256"), good), nil},
		{"RS256 empty kid as none", signRaw(t, "RS256", k.rsa, hdrKid("RS256", ""), good), nil},

		{"RS256 kid wrong key", signRaw(t, "RS256", k.rsa2, hdrKid("RS256", "r1"), evil), ErrSignature},
		{"ES256 kid wrong key", signRaw(t, "ES256", k.ec2, hdrKid("ES256", "e1"), evil), ErrSignature},
		{"RS256 no kid wrong key", signRaw(t, "RS256", k.rsa2, hdr("RS256"), evil), ErrSignature},
		{"ES256 no kid wrong key", signRaw(t, "ES256", k.ec2, hdr("ES256"), evil), ErrSignature},
		{"RS256 unknown kid", signRaw(t, "RS256", k.rsa2, hdrKid("RS256", "r2"), evil), ErrUnknownKey},
		{"kid case differs", signRaw(t, "RS256", k.rsa, hdrKid("RS256", "R1"), good), ErrUnknownKey},
		{"kid number", signRaw(t, "RS256", k.rsa, `{"alg":"RS256","kid":1}`, good), ErrMalformed},
		{"kid null", signRaw(t, "RS256", k.rsa, `{"alg":"RS256","kid":null}`, good), nil},

		// Confusions.
		{"kid of EC key with RS256 header", signRaw(t, "RS256", k.rsa, hdrKid("RS256", "e1"), evil), ErrAlgorithm},
		{"kid of RSA key with ES256 header", signRaw(t, "ES256", k.ec, hdrKid("ES256", "r1"), evil), ErrAlgorithm},
		{"HS256 with RSA modulus as secret", signRaw(t, "HS256", modulus, hdrKid("HS256", "r1"), evil), ErrAlgorithm},
		{"HS256 with EC point as secret", signRaw(t, "HS256", ecPoint, hdrKid("HS256", "e1"), evil), ErrAlgorithm},
		{"HS256 with RSA PEM as secret", signRaw(t, "HS256", k.rsaPEM, hdr("HS256"), evil), ErrAlgorithm},
		{"HS256 with JWKS document as secret", signRaw(t, "HS256", srv.body, hdr("HS256"), evil), ErrAlgorithm},
		{"HS256 with n member as secret", signRaw(t, "HS256", []byte(b64u(modulus)), hdrKid("HS256", "r1"), evil), ErrAlgorithm},
		{"alg none with kid", signRaw(t, "none", nil, hdrKid("none", "r1"), evil), ErrAlgorithm},
		{"alg None with kid and RSA signature", signRaw(t, "RS256", k.rsa, hdrKid("None", "r1"), evil), ErrAlgorithm},
		{"alg PS256 with kid", signRaw(t, "RS256", k.rsa, hdrKid("PS256", "r1"), evil), ErrAlgorithm},
		{"alg RS512 with kid", signRaw(t, "RS256", k.rsa, hdrKid("RS512", "r1"), evil), ErrAlgorithm},
		{"embedded jwk header", signRaw(t, "RS256", k.rsa2, `{"alg":"RS256","jwk":`+attackerJWK+`}`, evil), ErrSignature},
		{"embedded jwk header with kid", signRaw(t, "RS256", k.rsa2, `{"alg":"RS256","kid":"r1","jwk":`+attackerJWK+`}`, evil), ErrSignature},
		{"jku header", signRaw(t, "RS256", k.rsa2, `{"alg":"RS256","kid":"evil","jku":"`+srv.URL+`/evil"}`, evil), ErrUnknownKey},
		{"ES256 DER signature with kid", signRaw(t, "ES256-DER", k.ec, hdrKid("ES256", "e1"), good), ErrSignature},
		{"ES256 empty signature with kid", signRaw(t, "none", nil, hdrKid("ES256", "e1"), evil), ErrSignature},
		{"RS256 empty signature with kid", signRaw(t, "none", nil, hdrKid("RS256", "r1"), evil), ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token)
			checkVerifyErr(t, err, tt.want)
			if tt.want == nil && (c == nil || c.Subject != "u1") {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times; want 1 (the refetch for unknown kids is rate-limited)", n)
	}
}

// TestKeySetStaticAndJWKS: a Verifier may hold a secret, a static key and a
// key set at once; each token is checked against keys of its own type.
func TestKeySetStaticAndJWKS(t *testing.T) {
	t.Parallel()
	k := keys(t)
	srv := newJWKSServer(t, jwksDoc(t, rsaJWK(&k.rsa2.PublicKey, "r2")))
	ks := newKeySet(t, srv, KeySetConfig{MinRefetchInterval: time.Hour})
	v := newVerifier(t, Config{Secret: testSecret, PublicKey: &k.ec.PublicKey, KeySet: ks})
	good := goodPayload()
	for _, tt := range []struct {
		name, token string
		want        error
	}{
		{"HS256", signRaw(t, "HS256", testSecret, hdrKid("HS256", "r2"), good), nil},
		{"static ES256", signRaw(t, "ES256", k.ec, hdr("ES256"), good), nil},
		{"static ES256 with a kid", signRaw(t, "ES256", k.ec, hdrKid("ES256", "whatever"), good), nil},
		{"JWKS RS256", signRaw(t, "RS256", k.rsa2, hdrKid("RS256", "r2"), good), nil},
		{"JWKS RS256 no kid", signRaw(t, "RS256", k.rsa2, hdr("RS256"), good), nil},
		// The set has no EC key, but a kid-less ES256 token had the static
		// key to fail against.
		{"ES256 wrong key no kid", signRaw(t, "ES256", k.ec2, hdr("ES256"), good), ErrSignature},
		{"ES256 wrong key unknown kid", signRaw(t, "ES256", k.ec2, hdrKid("ES256", "e9"), good), ErrUnknownKey},
		{"RS256 static-less wrong key", signRaw(t, "RS256", k.rsa, hdrKid("RS256", "r2"), good), ErrSignature},
	} {
		_, err := v.Verify(tt.token)
		if err != nil && tt.want == nil || !errors.Is(err, tt.want) && tt.want != nil {
			t.Errorf("%s: Verify error = %v, want %v", tt.name, err, tt.want)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (lazily, then rate-limited)", n)
	}
}

// TestKeySetLazy: without Refresh or Start, the first token that needs a key
// fetches the set.
func TestKeySetLazy(t *testing.T) {
	t.Parallel()
	k := keys(t)
	srv := newJWKSServer(t, jwksDoc(t, rsaJWK(&k.rsa.PublicKey, "r1")))
	ks := newKeySet(t, srv, KeySetConfig{})
	if st := ks.Status(); st.Keys != 0 || st.Fetches != 0 || !st.Updated.IsZero() {
		t.Fatalf("new KeySet status = %+v", st)
	}
	v := newVerifier(t, Config{KeySet: ks})
	if _, err := v.Verify(signRaw(t, "RS256", k.rsa, hdr("RS256"), goodPayload())); err != nil {
		t.Fatalf("first kid-less token: %v", err)
	}
	st := ks.Status()
	if st.Keys != 1 || st.Fetches != 1 || st.Failures != 0 || st.Err != nil || st.Updated.IsZero() {
		t.Errorf("status after lazy fetch = %+v", st)
	}
	if accept := srv.reqHeader.Get("Accept"); !strings.Contains(accept, "application/jwk-set+json") {
		t.Errorf("Accept = %q", accept)
	}
}

// TestKeySetRotation: the provider replaces its key; a token with the new
// kid makes the set refetch at once, and the old kid stops working.
func TestKeySetRotation(t *testing.T) {
	t.Parallel()
	k := keys(t)
	srv := newJWKSServer(t, jwksDoc(t, rsaJWK(&k.rsa.PublicKey, "2024-01")))
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	ks := newKeySet(t, srv, KeySetConfig{MinRefetchInterval: 30 * time.Second})
	ks.now = clock.Now
	v := newVerifier(t, Config{KeySet: ks})
	good := goodPayload()
	oldTok := signRaw(t, "RS256", k.rsa, hdrKid("RS256", "2024-01"), good)
	newTok := signRaw(t, "ES256", k.ec, hdrKid("ES256", "2024-02"), good)

	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(oldTok); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	// Mid-test rotation: old kid gone, new kid (of another type) present.
	srv.set(http.StatusOK, jwksDoc(t, ecJWK(t, &k.ec.PublicKey, "2024-02")))
	clock.Advance(10 * time.Second)
	_, err := v.Verify(newTok)
	checkVerifyErr(t, err, ErrUnknownKey) // within MinRefetchInterval: no fetch
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	clock.Advance(21 * time.Second)
	if _, err := v.Verify(newTok); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	_, err = v.Verify(oldTok)
	checkVerifyErr(t, err, ErrUnknownKey)
	if n := srv.hits.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2: the old kid must not refetch within the interval", n)
	}
}

// TestKeySetUnknownKidFlood: tokens with random kids cost the JWKS endpoint
// at most one request per MinRefetchInterval, however many arrive and
// however concurrently.
func TestKeySetUnknownKidFlood(t *testing.T) {
	t.Parallel()
	k := keys(t)
	srv := newJWKSServer(t, jwksDoc(t, ecJWK(t, &k.ec.PublicKey, "e1")))
	srv.slow(50*time.Millisecond, false) // concurrent tokens overlap one fetch
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	ks := newKeySet(t, srv, KeySetConfig{})
	ks.now = clock.Now
	v := newVerifier(t, Config{KeySet: ks})

	flood := func(round int) {
		var wg sync.WaitGroup
		for g := 0; g < 16; g++ {
			wg.Go(func() {
				for i := 0; i < 20; i++ {
					kid := fmt.Sprintf("random-%d-%d-%d", round, g, i)
					_, err := v.Verify(signRaw(t, "none", nil, hdrKid("ES256", kid), goodPayload()) + strings.Repeat("A", 86))
					if !errors.Is(err, ErrUnknownKey) {
						t.Errorf("kid %s: err = %v, want ErrUnknownKey", kid, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	flood(0) // first use: one fetch, which every goroutine waits for or skips
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("first flood: %d fetches, want 1", n)
	}
	clock.Advance(29 * time.Second)
	flood(1)
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("flood within MinRefetchInterval: %d fetches, want 1", n)
	}
	clock.Advance(time.Second)
	flood(2)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("flood after MinRefetchInterval: %d fetches, want 2", n)
	}
	if _, err := v.Verify(signRaw(t, "ES256", k.ec, hdrKid("ES256", "e1"), goodPayload())); err != nil {
		t.Fatalf("known kid during the flood: %v", err)
	}
}

// TestKeySetBadFetches: every way a fetch can fail keeps the last good keys
// and is reported.
func TestKeySetBadFetches(t *testing.T) {
	t.Parallel()
	k := keys(t)
	goodDoc := jwksDoc(t, rsaJWK(&k.rsa.PublicKey, "r1"))
	srv := newJWKSServer(t, goodDoc)
	var reported []error
	var mu sync.Mutex
	ks := newKeySet(t, srv, KeySetConfig{
		Timeout:      300 * time.Millisecond,
		MaxBodyBytes: 4096,
		OnError: func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		},
	})
	v := newVerifier(t, Config{KeySet: ks})
	token := signRaw(t, "RS256", k.rsa, hdrKid("RS256", "r1"), goodPayload())
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	updated := ks.Status().Updated

	big := jwksDoc(t, rsaJWK(&k.rsa.PublicKey, "r1"), rsaJWK(&k.rsa.PublicKey, "r2"),
		map[string]any{"kty": "oct", "pad": strings.Repeat("x", 4096)})
	tests := []struct {
		name    string
		setup   func()
		errText string
	}{
		{"500", func() { srv.set(500, []byte(`{"keys":[]}`)) }, "status 500"},
		{"404", func() { srv.set(404, goodDoc) }, "status 404"},
		{"garbage", func() { srv.set(200, []byte("<html>maintenance</html>")) }, "not a JSON object"},
		{"truncated", func() { srv.set(200, goodDoc[:len(goodDoc)/2]) }, "not a JSON object"},
		{"no keys", func() { srv.set(200, []byte(`{"keys":[]}`)) }, "no usable"},
		{"only unusable keys", func() {
			srv.set(200, jwksDoc(t, map[string]any{"kty": "oct", "k": "c2VjcmV0"}, with(rsaJWK(&k.rsa.PublicKey, "r1"), "use", "enc")))
		}, "no usable RS256 or ES256 key (2 skipped)"},
		{"oversized with length", func() { srv.set(200, big) }, "exceeds the limit"},
		{"oversized chunked", func() {
			srv.mu.Lock()
			srv.chunked = true
			srv.mu.Unlock()
		}, "exceeds the limit"},
		{"slow headers", func() {
			srv.set(200, goodDoc)
			srv.slow(5*time.Second, false)
		}, "no complete response within 300ms"},
		{"slow body", func() { srv.slow(100*time.Millisecond, true) }, "no complete response within 300ms"},
	}
	for i, tt := range tests {
		tt.setup()
		start := time.Now()
		err := ks.Refresh(context.Background())
		if !errors.Is(err, ErrKeySet) || !strings.Contains(err.Error(), tt.errText) || !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("%s: Refresh error = %v, want ErrKeySet with %q and the URL", tt.name, err, tt.errText)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: Refresh took %v; Timeout is 300ms", tt.name, d)
		}
		if _, err := v.Verify(token); err != nil {
			t.Errorf("%s: good token after failed fetch: %v", tt.name, err)
		}
		st := ks.Status()
		if st.Keys != 1 || st.Err == nil || st.Failures != uint64(i+1) || !st.Updated.Equal(updated) {
			t.Errorf("%s: status = %+v", tt.name, st)
		}
		mu.Lock()
		if len(reported) != i+1 || reported[i] != st.Err {
			t.Errorf("%s: OnError got %d errors, want %d, the last being Status().Err", tt.name, len(reported), i+1)
		}
		mu.Unlock()
	}

	// Recovery.
	srv.mu.Lock()
	srv.delay, srv.trickle, srv.chunked = 0, false, false
	srv.mu.Unlock()
	srv.set(200, jwksDoc(t, rsaJWK(&k.rsa2.PublicKey, "r2")))
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh after recovery: %v", err)
	}
	if st := ks.Status(); st.Err != nil || st.Keys != 1 || !st.Updated.After(updated) {
		t.Errorf("status after recovery = %+v", st)
	}
}

// TestKeySetRefreshContext: Refresh gives up when its context ends; the
// fetch goes on and Close stops it.
func TestKeySetRefreshContext(t *testing.T) {
	t.Parallel()
	k := keys(t)
	srv := newJWKSServer(t, jwksDoc(t, rsaJWK(&k.rsa.PublicKey, "r1")))
	srv.slow(time.Hour, false)
	var reported atomic.Int64
	ks := newKeySet(t, srv, KeySetConfig{Timeout: time.Hour, OnError: func(error) { reported.Add(1) }})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ks.Refresh(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refresh = %v, want context.DeadlineExceeded", err)
	}
	// A token waits for the same fetch within its own context.
	v := newVerifier(t, Config{KeySet: ks})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err := v.VerifyContext(ctx2, signRaw(t, "RS256", k.rsa, hdrKid("RS256", "r1"), goodPayload()))
	checkVerifyErr(t, err, ErrUnknownKey)
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 shared fetch", n)
	}

	start := time.Now()
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a fetch under way", d)
	}
	if n := reported.Load(); n != 0 {
		t.Errorf("OnError called %d times for a fetch aborted by Close", n)
	}
	if err := ks.Refresh(context.Background()); !errors.Is(err, ErrKeySet) {
		t.Errorf("Refresh after Close = %v, want ErrKeySet", err)
	}
	if err := ks.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestKeySetStart: the refresh loop fetches at once, every RefreshInterval
// after a success, every MinRefetchInterval after a failure, and stops on
// Close.
func TestKeySetStart(t *testing.T) {
	t.Parallel()
	k := keys(t)
	srv := newJWKSServer(t, jwksDoc(t, rsaJWK(&k.rsa.PublicKey, "r1")))
	ks := newKeySet(t, srv, KeySetConfig{RefreshInterval: 40 * time.Millisecond, MinRefetchInterval: time.Hour})
	ks.Start()
	ks.Start() // idempotent
	waitFor(t, "three periodic fetches", func() bool { return srv.hits.Load() >= 3 })
	if st := ks.Status(); st.Keys != 1 || st.Err != nil {
		t.Errorf("status = %+v", st)
	}

	// Rotation picked up by the loop alone, without any token asking.
	srv.set(200, jwksDoc(t, ecJWK(t, &k.ec.PublicKey, "e1")))
	v := newVerifier(t, Config{KeySet: ks})
	waitFor(t, "the rotated key", func() bool {
		set := ks.keys.Load()
		return len(set.keys) == 1 && set.keys[0].kid == "e1"
	})
	if _, err := v.Verify(signRaw(t, "ES256", k.ec, hdrKid("ES256", "e1"), goodPayload())); err != nil {
		t.Fatal(err)
	}

	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	n := srv.hits.Load()
	time.Sleep(150 * time.Millisecond)
	if m := srv.hits.Load(); m != n {
		t.Errorf("%d fetches after Close", m-n)
	}
	ks.Start() // after Close: nothing
	time.Sleep(100 * time.Millisecond)
	if m := srv.hits.Load(); m != n {
		t.Errorf("Start after Close fetched %d times", m-n)
	}
}

// TestKeySetStartRetry: after a failed fetch the loop retries after
// MinRefetchInterval, not RefreshInterval.
func TestKeySetStartRetry(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, []byte("garbage"))
	var failures atomic.Int64
	ks := newKeySet(t, srv, KeySetConfig{
		RefreshInterval:    time.Hour,
		MinRefetchInterval: 30 * time.Millisecond,
		OnError:            func(error) { failures.Add(1) },
	})
	ks.Start()
	waitFor(t, "three failed fetches", func() bool { return failures.Load() >= 3 })
	k := keys(t)
	srv.set(200, jwksDoc(t, rsaJWK(&k.rsa.PublicKey, "r1")))
	waitFor(t, "a successful retry", func() bool { return ks.Status().Keys == 1 })
	n := srv.hits.Load()
	time.Sleep(150 * time.Millisecond)
	if m := srv.hits.Load(); m != n {
		t.Errorf("%d fetches within RefreshInterval after a success", m-n)
	}
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewKeySet(t *testing.T) {
	t.Parallel()
	for _, cfg := range []KeySetConfig{
		{},
		{URL: "idp.example/jwks"},
		{URL: "/jwks.json"},
		{URL: "ftp://idp.example/jwks"},
		{URL: "file:///etc/jwks.json"},
		{URL: "https://"},
		{URL: "https://idp.example/jwks", Timeout: -1},
		{URL: "https://idp.example/jwks", RefreshInterval: -1},
		{URL: "https://idp.example/jwks", MinRefetchInterval: -1},
		{URL: "https://idp.example/jwks", MaxBodyBytes: -1},
	} {
		if ks, err := NewKeySet(cfg); !errors.Is(err, ErrKeySet) {
			t.Errorf("NewKeySet(%+v) = %v, %v; want ErrKeySet", cfg, ks, err)
		}
	}
	ks, err := NewKeySet(KeySetConfig{URL: "https://idp.example/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	if ks.timeout != DefaultKeySetTimeout || ks.refresh != DefaultKeySetRefreshInterval ||
		ks.minRefetch != DefaultKeySetMinRefetchInterval || ks.maxBody != DefaultKeySetMaxBodyBytes ||
		ks.client == nil || ks.client.Timeout != DefaultKeySetTimeout {
		t.Errorf("defaults not applied: %+v", ks)
	}
	if v, err := New(Config{KeySet: ks}); err != nil || v == nil {
		t.Errorf("New with only a KeySet: %v", err)
	}
}

// TestInteropJWKS: a JWKS encoded by node's crypto (testdata/
// gen-interop-jwks.cjs) verifies the tokens jsonwebtoken minted.
func TestInteropJWKS(t *testing.T) {
	t.Parallel()
	iv := loadInterop(t)
	doc, err := os.ReadFile("testdata/interop-jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t, doc)
	ks := newKeySet(t, srv, KeySetConfig{})
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := ks.Status(); st.Keys != 2 || st.Skipped != 0 {
		t.Fatalf("status = %+v, want 2 usable keys", st)
	}
	v := newVerifier(t, Config{KeySet: ks, Now: func() time.Time { return time.Unix(iv.Now, 0) }})
	for _, alg := range []string{"RS256", "ES256"} {
		c, err := v.Verify(iv.Tokens[alg])
		if err != nil || c.Subject != "user-42" {
			t.Errorf("%s token from jsonwebtoken: %+v, %v", alg, c, err)
		}
	}
	_, err = v.Verify(iv.Tokens["HS256"])
	checkVerifyErr(t, err, ErrAlgorithm)
}

// TestKeySetKidlessAndDuplicates: a token without kid is tried against every
// key of its type, in document order; a kid shared by keys of both types
// selects the one of the token's type.
func TestKeySetKidlessAndDuplicates(t *testing.T) {
	t.Parallel()
	k := keys(t)
	srv := newJWKSServer(t, jwksDoc(t,
		ecJWK(t, &k.ec2.PublicKey, "dup"),
		rsaJWK(&k.rsa2.PublicKey, "a"),
		rsaJWK(&k.rsa.PublicKey, "dup"),
		with(ecJWK(t, &k.ec.PublicKey, ""), "kid", nil),
	))
	ks := newKeySet(t, srv, KeySetConfig{MinRefetchInterval: time.Hour})
	v := newVerifier(t, Config{KeySet: ks})
	good := goodPayload()
	for _, tt := range []struct {
		name, token string
		want        error
	}{
		{"RS256 no kid, second RSA key", signRaw(t, "RS256", k.rsa, hdr("RS256"), good), nil},
		{"RS256 no kid, first RSA key", signRaw(t, "RS256", k.rsa2, hdr("RS256"), good), nil},
		{"ES256 no kid, key without kid", signRaw(t, "ES256", k.ec, hdr("ES256"), good), nil},
		{"RS256 shared kid", signRaw(t, "RS256", k.rsa, hdrKid("RS256", "dup"), good), nil},
		{"ES256 shared kid", signRaw(t, "ES256", k.ec2, hdrKid("ES256", "dup"), good), nil},
		// A kid selects only its own keys, even when another key verifies.
		{"RS256 kid a, key dup", signRaw(t, "RS256", k.rsa, hdrKid("RS256", "a"), good), ErrSignature},
		{"ES256 kid of a kid-less key", signRaw(t, "ES256", k.ec, hdrKid("ES256", "dup"), good), ErrSignature},
	} {
		_, err := v.Verify(tt.token)
		checkVerifyErr(t, err, tt.want)
	}
}

// TestKeySetDefaultClient: the KeySet's own client times out a slow server
// and fetches from a good one; Close releases its connections (TestMain
// checks that no goroutine is left).
func TestKeySetDefaultClient(t *testing.T) {
	t.Parallel()
	k := keys(t)
	srv := newJWKSServer(t, jwksDoc(t, rsaJWK(&k.rsa.PublicKey, "r1")))
	ks, err := NewKeySet(KeySetConfig{URL: srv.URL, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	if err := ks.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	srv.slow(time.Minute, false)
	err = ks.Refresh(context.Background())
	if !errors.Is(err, ErrKeySet) || !strings.Contains(err.Error(), "no complete response within 200ms") {
		t.Fatalf("slow server: Refresh = %v", err)
	}
	if st := ks.Status(); st.Keys != 1 || st.Failures != 1 {
		t.Errorf("status = %+v", st)
	}
}
