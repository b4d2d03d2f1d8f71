package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestSign(t *testing.T) {
	t.Parallel()
	k := keys(t)
	claims := map[string]any{"sub": "u1", "join": []string{"room:*"}, "exp": testNow.Unix() + 60}
	// The same claims as JSON, keys sorted the way encoding/json sorts them.
	const claimsJSON = `{"exp":1700000060,"join":["room:*"],"sub":"u1"}`

	vHS := newVerifier(t, Config{Secret: testSecret})
	vRSA := newVerifier(t, Config{PublicKey: &k.rsa.PublicKey})
	vEC := newVerifier(t, Config{PublicKey: &k.ec.PublicKey})

	tests := []struct {
		alg    string
		key    any
		v      *Verifier
		sigLen int
		// deterministic signatures must equal the test suite's own signer's
		deterministic bool
	}{
		{"HS256", testSecret, vHS, 32, true},
		{"HS256", string(testSecret), vHS, 32, true},
		{"HS384", testSecret, vHS, 48, true},
		{"HS512", testSecret, vHS, 64, true},
		{"RS256", k.rsa, vRSA, 256, true},
		{"ES256", k.ec, vEC, 64, false},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			t.Parallel()
			token, err := Sign(tt.alg, tt.key, claims)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			c, err := tt.v.Verify(token)
			if err != nil {
				t.Fatalf("Verify(Sign(%s)): %v", tt.alg, err)
			}
			if c.Subject != "u1" || !c.CanJoin("room:x") {
				t.Fatalf("claims = %+v", c)
			}
			parts := strings.Split(token, ".")
			header, _ := base64.RawURLEncoding.DecodeString(parts[0])
			if want := hdr(tt.alg); string(header) != want {
				t.Errorf("header = %s, want %s", header, want)
			}
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			if len(sig) != tt.sigLen {
				t.Errorf("signature is %d bytes, want %d", len(sig), tt.sigLen)
			}
			if tt.deterministic {
				key := tt.key
				if s, ok := key.(string); ok {
					key = []byte(s)
				}
				if want := signRaw(t, tt.alg, key, hdr(tt.alg), claimsJSON); token != want {
					t.Errorf("Sign = %s\nwant  %s", token, want)
				}
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	k := keys(t)
	tests := []struct {
		name string
		alg  string
		key  any
		want error
	}{
		{"none", "none", nil, ErrAlgorithm},
		{"lowercase", "hs256", testSecret, ErrAlgorithm},
		{"PS256", "PS256", k.rsa, ErrAlgorithm},
		{"empty alg", "", testSecret, ErrAlgorithm},
		{"HS256 empty secret", "HS256", []byte{}, ErrKey},
		{"HS256 empty string secret", "HS256", "", ErrKey},
		{"HS256 with RSA key", "HS256", k.rsa, ErrKey},
		{"RS256 with secret", "RS256", testSecret, ErrKey},
		{"RS256 with public key", "RS256", &k.rsa.PublicKey, ErrKey},
		{"RS256 with EC key", "RS256", k.ec, ErrKey},
		{"ES256 with RSA key", "ES256", k.rsa, ErrKey},
		{"ES256 with public key", "ES256", &k.ec.PublicKey, ErrKey},
		{"ES256 nil", "ES256", nil, ErrKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			token, err := Sign(tt.alg, tt.key, map[string]any{"sub": "u"})
			if !errors.Is(err, tt.want) || token != "" {
				t.Fatalf("Sign = %q, %v; want error %v", token, err, tt.want)
			}
		})
	}

	if _, err := Sign("HS256", testSecret, map[string]any{"sub": "u", "bad": func() {}}); err == nil {
		t.Error("Sign with unencodable claims succeeded")
	}
}

func TestSignNilClaims(t *testing.T) {
	t.Parallel()
	token, err := Sign("HS256", testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if string(payload) != "{}" {
		t.Fatalf("payload = %s, want {}", payload)
	}
	_, err = newVerifier(t, Config{Secret: testSecret}).Verify(token)
	checkVerifyErr(t, err, ErrClaims) // no sub
}
