package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/sitest"
)

// TestJWKSIssuerAudience: --jwks-url keys verify RS256 tokens, and
// --jwt-issuer / --jwt-audience refuse tokens minted for someone else.
func TestJWKSIssuerAudience(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(jwks.Close)
	n := start(t, Config{JWKSURL: jwks.URL, JWTIssuer: "https://issuer.example", JWTAudience: "roomcast"})
	sign := func(claims map[string]any) string {
		t.Helper()
		tok, err := auth.Sign("RS256", key, claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := map[string]any{"sub": "u1", "iss": "https://issuer.example", "aud": []any{"other", "roomcast"}}
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(sign(good)))

	for name, claims := range map[string]map[string]any{
		"wrong issuer":   {"sub": "u1", "iss": "https://evil.example", "aud": "roomcast"},
		"wrong audience": {"sub": "u1", "iss": "https://issuer.example", "aud": "someone-else"},
		"no audience":    {"sub": "u1", "iss": "https://issuer.example"},
	} {
		c := sitest.Dial(t, n.wsURL)
		c.Send("40" + authPayload(sign(claims)))
		if got := c.Read(); !strings.HasPrefix(got, `44{"message":"auth: `) {
			t.Errorf("%s: got %s, want a CONNECT_ERROR", name, got)
		}
	}
	// The HMAC secret of the test helper is still accepted alongside.
	c2 := sitest.Dial(t, n.wsURL)
	c2.Connect("/", authPayload(token(t, map[string]any{"sub": "u2", "iss": "https://issuer.example", "aud": "roomcast"})))
}
