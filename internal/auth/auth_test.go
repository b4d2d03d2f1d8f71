package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is the pinned clock of every test verifier.
var testNow = time.Unix(1_700_000_000, 0)

var testSecret = []byte("test-secret-0123456789abcdef0123456789")

// testKeys are generated once per test binary: RSA key generation is slow
// under the race detector.
type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec, ec2   *ecdsa.PrivateKey
	rsaPEM    []byte // PKIX PEM of rsa.PublicKey
	ecPEM     []byte // PKIX PEM of ec.PublicKey
}

var keysOnce = sync.OnceValues(func() (*testKeys, error) {
	var k testKeys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if k.rsaPEM, err = pemPublicKey(&k.rsa.PublicKey); err != nil {
		return nil, err
	}
	if k.ecPEM, err = pemPublicKey(&k.ec.PublicKey); err != nil {
		return nil, err
	}
	return &k, nil
})

func pemPublicKey(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

func keys(tb testing.TB) *testKeys {
	tb.Helper()
	k, err := keysOnce()
	if err != nil {
		tb.Fatalf("generate test keys: %v", err)
	}
	return k
}

// newVerifier builds a Verifier with the pinned clock.
func newVerifier(tb testing.TB, cfg Config) *Verifier {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	v, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return v
}

// signRaw is the test suite's own signer, independent of Sign: it signs the
// header and payload JSON exactly as given, so tests can craft hostile
// headers. alg selects the signing algorithm (not necessarily the header's
// "alg"); "none" produces an empty signature.
func signRaw(tb testing.TB, alg string, key any, header, payload string) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	var sig []byte
	mac := func(h func() hash.Hash) []byte {
		m := hmac.New(h, key.([]byte))
		m.Write([]byte(input))
		return m.Sum(nil)
	}
	switch alg {
	case "none":
	case "HS256":
		sig = mac(sha256.New)
	case "HS384":
		sig = mac(sha512.New384)
	case "HS512":
		sig = mac(sha512.New)
	case "RS256":
		d := sha256.Sum256([]byte(input))
		var err error
		if sig, err = rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), crypto.SHA256, d[:]); err != nil {
			tb.Fatal(err)
		}
	case "ES256", "ES256-DER":
		d := sha256.Sum256([]byte(input))
		der, err := ecdsa.SignASN1(rand.Reader, key.(*ecdsa.PrivateKey), d[:])
		if err != nil {
			tb.Fatal(err)
		}
		if alg == "ES256-DER" { // the ASN.1 form JWS forbids
			sig = der
			break
		}
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			tb.Fatal(err)
		}
		sig = make([]byte, 64)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
	default:
		tb.Fatalf("signRaw: unknown alg %q", alg)
	}
	return input + "." + enc.EncodeToString(sig)
}

// hdr returns the usual JOSE header for alg.
func hdr(alg string) string { return `{"alg":"` + alg + `","typ":"JWT"}` }

// sentinels are the errors Verify may wrap; each failure wraps exactly one.
var sentinels = []error{ErrMalformed, ErrAlgorithm, ErrSignature, ErrUnknownKey, ErrExpired, ErrNotYetValid, ErrClaims}

// checkVerifyErr fails unless err wraps want and no other sentinel, and its
// text starts with want's text (what a client is shown).
func checkVerifyErr(tb testing.TB, err, want error) {
	tb.Helper()
	if want == nil {
		if err != nil {
			tb.Fatalf("Verify: unexpected error %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		tb.Fatalf("Verify error = %v, want %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			tb.Fatalf("Verify error %v also matches %v", err, s)
		}
	}
	if !strings.HasPrefix(err.Error(), want.Error()) {
		tb.Fatalf("Verify error text %q does not start with %q", err, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	k := keys(t)
	now := testNow.Unix()
	good := fmt.Sprintf(`{"sub":"u1","exp":%d,"join":["room:*"],"publish":"room:a"}`, now+60)

	vHS := newVerifier(t, Config{Secret: testSecret})
	vRSA := newVerifier(t, Config{PublicKey: &k.rsa.PublicKey})
	vEC := newVerifier(t, Config{PublicKey: &k.ec.PublicKey})
	vBoth := newVerifier(t, Config{Secret: testSecret, PublicKey: &k.rsa.PublicKey})
	vLeeway := newVerifier(t, Config{Secret: testSecret, Leeway: 5 * time.Second})
	vIssAud := newVerifier(t, Config{Secret: testSecret, Issuer: "https://issuer", Audience: "roomcast"})

	hs := func(payload string) string { return signRaw(t, "HS256", testSecret, hdr("HS256"), payload) }
	// swapPayload keeps token's header and signature but carries payload.
	swapPayload := func(token, payload string) string {
		parts := strings.Split(token, ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(payload))
		return strings.Join(parts, ".")
	}
	// flipSig changes one bit in the first signature byte.
	flipSig := func(token string) string {
		parts := strings.Split(token, ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		sig[0] ^= 1
		parts[2] = base64.RawURLEncoding.EncodeToString(sig)
		return strings.Join(parts, ".")
	}
	evil := `{"sub":"admin","join":"*","publish":"*"}`

	tests := []struct {
		name  string
		v     *Verifier
		token string
		want  error
	}{
		// Every algorithm, good.
		{"HS256", vHS, signRaw(t, "HS256", testSecret, hdr("HS256"), good), nil},
		{"HS384", vHS, signRaw(t, "HS384", testSecret, hdr("HS384"), good), nil},
		{"HS512", vHS, signRaw(t, "HS512", testSecret, hdr("HS512"), good), nil},
		{"RS256", vRSA, signRaw(t, "RS256", k.rsa, hdr("RS256"), good), nil},
		{"ES256", vEC, signRaw(t, "ES256", k.ec, hdr("ES256"), good), nil},
		{"HS256 with secret and RSA key", vBoth, signRaw(t, "HS256", testSecret, hdr("HS256"), good), nil},
		{"RS256 with secret and RSA key", vBoth, signRaw(t, "RS256", k.rsa, hdr("RS256"), good), nil},
		{"header without typ", vHS, signRaw(t, "HS256", testSecret, `{"alg":"HS256"}`, good), nil},
		{"header with kid", vHS, signRaw(t, "HS256", testSecret, `{"alg":"HS256","kid":"k1"}`, good), nil},

		// Every algorithm, wrong key.
		{"HS256 wrong secret", vHS, signRaw(t, "HS256", []byte("other"), hdr("HS256"), good), ErrSignature},
		{"HS384 wrong secret", vHS, signRaw(t, "HS384", []byte("other"), hdr("HS384"), good), ErrSignature},
		{"HS512 wrong secret", vHS, signRaw(t, "HS512", []byte("other"), hdr("HS512"), good), ErrSignature},
		{"RS256 wrong key", vRSA, signRaw(t, "RS256", k.rsa2, hdr("RS256"), good), ErrSignature},
		{"ES256 wrong key", vEC, signRaw(t, "ES256", k.ec2, hdr("ES256"), good), ErrSignature},
		// The header names one HMAC size, the MAC is another.
		{"HS256 header, HS512 MAC", vHS, signRaw(t, "HS512", testSecret, hdr("HS256"), good), ErrSignature},

		// Tampering.
		{"HS256 tampered payload", vHS, swapPayload(signRaw(t, "HS256", testSecret, hdr("HS256"), good), evil), ErrSignature},
		{"HS512 tampered payload", vHS, swapPayload(signRaw(t, "HS512", testSecret, hdr("HS512"), good), evil), ErrSignature},
		{"RS256 tampered payload", vRSA, swapPayload(signRaw(t, "RS256", k.rsa, hdr("RS256"), good), evil), ErrSignature},
		{"ES256 tampered payload", vEC, swapPayload(signRaw(t, "ES256", k.ec, hdr("ES256"), good), evil), ErrSignature},
		{"HS256 flipped signature", vHS, flipSig(signRaw(t, "HS256", testSecret, hdr("HS256"), good)), ErrSignature},
		{"RS256 flipped signature", vRSA, flipSig(signRaw(t, "RS256", k.rsa, hdr("RS256"), good)), ErrSignature},
		{"ES256 flipped signature", vEC, flipSig(signRaw(t, "ES256", k.ec, hdr("ES256"), good)), ErrSignature},
		{"HS256 empty signature", vHS, signRaw(t, "none", nil, hdr("HS256"), good), ErrSignature},
		{"RS256 empty signature", vRSA, signRaw(t, "none", nil, hdr("RS256"), good), ErrSignature},
		{"ES256 empty signature", vEC, signRaw(t, "none", nil, hdr("ES256"), good), ErrSignature},
		{"ES256 DER signature", vEC, signRaw(t, "ES256-DER", k.ec, hdr("ES256"), good), ErrSignature},
		{"ES256 zero signature", vEC, signRaw(t, "none", nil, hdr("ES256"), good) + strings.Repeat("A", 86), ErrSignature},
		{"RS256 signature too short", vRSA, signRaw(t, "none", nil, hdr("RS256"), good) + "AAAA", ErrSignature},

		// alg none, any spelling, signed or not.
		{"alg none", vHS, signRaw(t, "none", nil, hdr("none"), good), ErrAlgorithm},
		{"alg None", vHS, signRaw(t, "none", nil, hdr("None"), good), ErrAlgorithm},
		{"alg NONE", vRSA, signRaw(t, "none", nil, hdr("NONE"), good), ErrAlgorithm},
		{"alg nOnE", vEC, signRaw(t, "none", nil, hdr("nOnE"), good), ErrAlgorithm},
		{"alg none with HMAC signature", vHS, signRaw(t, "HS256", testSecret, hdr("none"), good), ErrAlgorithm},

		// Algorithm not matched to a configured key.
		{"HS256 to RSA-only verifier", vRSA, signRaw(t, "HS256", testSecret, hdr("HS256"), good), ErrAlgorithm},
		{"HS256 to EC-only verifier", vEC, signRaw(t, "HS256", testSecret, hdr("HS256"), good), ErrAlgorithm},
		{"RS256 to HMAC-only verifier", vHS, signRaw(t, "RS256", k.rsa, hdr("RS256"), good), ErrAlgorithm},
		{"ES256 to RSA verifier", vRSA, signRaw(t, "ES256", k.ec, hdr("ES256"), good), ErrAlgorithm},
		{"RS256 to EC verifier", vEC, signRaw(t, "RS256", k.rsa, hdr("RS256"), good), ErrAlgorithm},
		{"ES256 to HMAC+RSA verifier", vBoth, signRaw(t, "ES256", k.ec, hdr("ES256"), good), ErrAlgorithm},
		// Algorithm confusion: the public key's PEM used as an HMAC secret.
		{"confusion RSA PEM as HS256 secret", vRSA, signRaw(t, "HS256", k.rsaPEM, hdr("HS256"), evil), ErrAlgorithm},
		{"confusion EC PEM as HS256 secret", vEC, signRaw(t, "HS256", k.ecPEM, hdr("HS256"), evil), ErrAlgorithm},
		{"confusion RSA PEM as HS512 secret", vRSA, signRaw(t, "HS512", k.rsaPEM, hdr("HS512"), evil), ErrAlgorithm},
		// Names we do not implement or spell differently.
		{"alg lowercase hs256", vHS, signRaw(t, "HS256", testSecret, hdr("hs256"), good), ErrAlgorithm},
		{"alg PS256", vRSA, signRaw(t, "RS256", k.rsa, hdr("PS256"), good), ErrAlgorithm},
		{"alg RS512", vRSA, signRaw(t, "RS256", k.rsa, hdr("RS512"), good), ErrAlgorithm},
		{"alg ES384", vEC, signRaw(t, "ES256", k.ec, hdr("ES384"), good), ErrAlgorithm},
		{"alg EdDSA", vHS, signRaw(t, "HS256", testSecret, hdr("EdDSA"), good), ErrAlgorithm},
		{"alg missing", vHS, signRaw(t, "HS256", testSecret, `{"typ":"JWT"}`, good), ErrAlgorithm},
		{"alg not a string", vHS, signRaw(t, "HS256", testSecret, `{"alg":256}`, good), ErrAlgorithm},
		{"alg in other case key", vHS, signRaw(t, "HS256", testSecret, `{"ALG":"HS256"}`, good), ErrAlgorithm},
		{"duplicate alg last none", vHS, signRaw(t, "HS256", testSecret, `{"alg":"HS256","alg":"none"}`, good), ErrAlgorithm},
		{"crit header", vHS, signRaw(t, "HS256", testSecret, `{"alg":"HS256","crit":["exp"],"exp":1}`, good), ErrAlgorithm},
		{"empty crit header", vHS, signRaw(t, "HS256", testSecret, `{"alg":"HS256","crit":[]}`, good), ErrAlgorithm},
		{"b64 false header", vHS, signRaw(t, "HS256", testSecret, `{"alg":"HS256","b64":false}`, good), ErrAlgorithm},

		// Time.
		{"expired", vHS, hs(fmt.Sprintf(`{"sub":"u","exp":%d}`, now-1)), ErrExpired},
		{"expires exactly now", vHS, hs(fmt.Sprintf(`{"sub":"u","exp":%d}`, now)), ErrExpired},
		{"expires in a second", vHS, hs(fmt.Sprintf(`{"sub":"u","exp":%d}`, now+1)), nil},
		{"exp epoch zero", vHS, hs(`{"sub":"u","exp":0}`), ErrExpired},
		{"exp negative", vHS, hs(`{"sub":"u","exp":-1e300}`), ErrExpired},
		{"exp far future", vHS, hs(`{"sub":"u","exp":1e300}`), nil},
		{"exp float future", vHS, hs(fmt.Sprintf(`{"sub":"u","exp":%d.5}`, now)), nil},
		{"exp float past", vHS, hs(fmt.Sprintf(`{"sub":"u","exp":%d.5}`, now-1)), ErrExpired},
		{"exp exponent form", vHS, hs(`{"sub":"u","exp":1.7000001e9}`), nil},
		{"expired within leeway", vLeeway, hs(fmt.Sprintf(`{"sub":"u","exp":%d}`, now-4)), nil},
		{"expired beyond leeway", vLeeway, hs(fmt.Sprintf(`{"sub":"u","exp":%d}`, now-5)), ErrExpired},
		{"nbf future", vHS, hs(fmt.Sprintf(`{"sub":"u","nbf":%d}`, now+10)), ErrNotYetValid},
		{"nbf float just ahead", vHS, hs(fmt.Sprintf(`{"sub":"u","nbf":%d.25}`, now)), ErrNotYetValid},
		{"nbf now", vHS, hs(fmt.Sprintf(`{"sub":"u","nbf":%d}`, now)), nil},
		{"nbf past", vHS, hs(fmt.Sprintf(`{"sub":"u","nbf":%d}`, now-10)), nil},
		{"nbf within leeway", vLeeway, hs(fmt.Sprintf(`{"sub":"u","nbf":%d}`, now+5)), nil},
		{"nbf beyond leeway", vLeeway, hs(fmt.Sprintf(`{"sub":"u","nbf":%d}`, now+6)), ErrNotYetValid},
		{"exp year one", vHS, hs(`{"sub":"u","exp":-62135596800}`), ErrExpired},

		// Claim types.
		{"sub missing", vHS, hs(`{"exp":1e10}`), ErrClaims},
		{"sub empty", vHS, hs(`{"sub":""}`), ErrClaims},
		{"sub number", vHS, hs(`{"sub":42}`), ErrClaims},
		{"sub null", vHS, hs(`{"sub":null}`), ErrClaims},
		{"exp string", vHS, hs(`{"sub":"u","exp":"1800000000"}`), ErrClaims},
		{"exp null", vHS, hs(`{"sub":"u","exp":null}`), ErrClaims},
		{"nbf bool", vHS, hs(`{"sub":"u","nbf":true}`), ErrClaims},
		{"iat string", vHS, hs(`{"sub":"u","iat":"yesterday"}`), ErrClaims},
		{"join number", vHS, hs(`{"sub":"u","join":5}`), ErrClaims},
		{"join object", vHS, hs(`{"sub":"u","join":{"room":true}}`), ErrClaims},
		{"join array with number", vHS, hs(`{"sub":"u","join":["a",1]}`), ErrClaims},
		{"join array with null", vHS, hs(`{"sub":"u","join":["a",null]}`), ErrClaims},
		{"join null", vHS, hs(`{"sub":"u","join":null}`), ErrClaims},
		{"publish nested array", vHS, hs(`{"sub":"u","publish":[["a"]]}`), ErrClaims},
		{"publish bool", vHS, hs(`{"sub":"u","publish":false}`), ErrClaims},
		{"dm number", vHS, hs(`{"sub":"u","dm":5}`), ErrClaims},
		{"dm object", vHS, hs(`{"sub":"u","dm":{"u2":true}}`), ErrClaims},
		{"dm array with number", vHS, hs(`{"sub":"u","dm":["u2",3]}`), ErrClaims},
		{"dm null", vHS, hs(`{"sub":"u","dm":null}`), ErrClaims},
		{"dm bool", vHS, hs(`{"sub":"u","dm":true}`), ErrClaims},
		{"dm empty list", vHS, hs(`{"sub":"u","dm":[]}`), nil},
		{"wrong types beat expiry", vHS, hs(`{"sub":"u","exp":1,"join":7}`), ErrClaims},
		{"issuer and audience ok", vIssAud, hs(`{"sub":"u","iss":"https://issuer","aud":["x","roomcast"]}`), nil},
		{"audience string ok", vIssAud, hs(`{"sub":"u","iss":"https://issuer","aud":"roomcast"}`), nil},
		{"issuer wrong", vIssAud, hs(`{"sub":"u","iss":"https://evil","aud":"roomcast"}`), ErrClaims},
		{"issuer missing", vIssAud, hs(`{"sub":"u","aud":"roomcast"}`), ErrClaims},
		{"audience wrong", vIssAud, hs(`{"sub":"u","iss":"https://issuer","aud":["x"]}`), ErrClaims},
		{"audience missing", vIssAud, hs(`{"sub":"u","iss":"https://issuer"}`), ErrClaims},
		{"iss and aud unchecked by default", vHS, hs(`{"sub":"u","iss":7,"aud":{}}`), nil},

		// Validly signed but not JSON objects.
		{"payload array", vHS, hs(`["sub"]`), ErrMalformed},
		{"payload null", vHS, hs(`null`), ErrMalformed},
		{"payload string", vHS, hs(`"sub"`), ErrMalformed},
		{"payload not JSON", vHS, hs(`sub=u`), ErrMalformed},
		{"payload trailing garbage", vHS, hs(`{"sub":"u"} x`), ErrMalformed},
		{"payload empty", vHS, hs(``), ErrMalformed},
		{"payload number out of range", vHS, hs(`{"sub":"u","exp":1e400}`), ErrMalformed},
		{"header null", vHS, signRaw(t, "HS256", testSecret, `null`, good), ErrMalformed},
		{"header array", vHS, signRaw(t, "HS256", testSecret, `["HS256"]`, good), ErrMalformed},
		{"header not JSON", vHS, signRaw(t, "HS256", testSecret, `alg=HS256`, good), ErrMalformed},

		// Garbage.
		{"empty", vHS, "", ErrMalformed},
		{"one part", vHS, "abc", ErrMalformed},
		{"two parts", vHS, "abc.def", ErrMalformed},
		{"four parts", vHS, hs(good) + ".abc", ErrMalformed},
		{"only dots", vHS, "..", ErrMalformed},
		{"empty header", vHS, ".e30.abc", ErrMalformed},
		{"empty payload", vHS, "e30..abc", ErrMalformed},
		{"standard base64 alphabet", vHS, "ab+c.de/f.ghi", ErrMalformed},
		{"padding", vHS, hs(good) + "=", ErrMalformed},
		{"newline inside", vHS, strings.Replace(hs(good), ".", ".\n", 1), ErrMalformed},
		{"space", vHS, " " + hs(good), ErrMalformed},
		{"bearer prefix", vHS, "Bearer " + hs(good), ErrMalformed},
		{"bad base64 length", vHS, "e30.e30.a", ErrMalformed},
		{"non-canonical base64", vHS, nonCanonical(t, hs(good)), ErrMalformed},
		{"oversized", vHS, hs(`{"sub":"u","pad":"` + strings.Repeat("x", DefaultMaxTokenSize) + `"}`), ErrMalformed},
		{"oversized garbage", vHS, strings.Repeat("a", DefaultMaxTokenSize+1), ErrMalformed},
		{"binary", vHS, "\x00\xff.\x01.\x02", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tt.v.Verify(tt.token)
			checkVerifyErr(t, err, tt.want)
			if tt.want != nil {
				if c != nil {
					t.Fatalf("Verify returned claims %+v with error %v", c, err)
				}
				return
			}
			if c == nil || c.Subject == "" {
				t.Fatalf("Verify returned claims %+v, want a subject", c)
			}
			if c.Raw["sub"] != c.Subject {
				t.Fatalf("Raw[sub] = %v, Subject = %q", c.Raw["sub"], c.Subject)
			}
		})
	}
}

// nonCanonical rewrites the last signature character so that the unused low
// bits are set: lenient decoders yield the same bytes, a strict one refuses.
func nonCanonical(tb testing.TB, token string) string {
	tb.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, token[len(token)-1])
	// HS256: 32 bytes -> 43 characters, the last one carries 2 unused bits.
	if len(strings.Split(token, ".")[2]) != 43 || i&3 != 0 {
		tb.Fatalf("nonCanonical wants a canonical HS256 token")
	}
	return token[:len(token)-1] + string(alphabet[i|1])
}

func TestVerifyClaims(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, Config{Secret: testSecret})
	token := signRaw(t, "HS256", testSecret, hdr("HS256"),
		`{"sub":"user-1","exp":1700000060.25,"nbf":1699999990,"iat":1699999990,`+
			`"join":["room:*","lobby"],"publish":"room:general","dm":["support:*","u2"],"name":"Ada","n":3}`)
	c, err := v.Verify(token)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "user-1" {
		t.Errorf("Subject = %q", c.Subject)
	}
	if !slices.Equal(c.Join, []string{"room:*", "lobby"}) {
		t.Errorf("Join = %q", c.Join)
	}
	if !slices.Equal(c.Publish, []string{"room:general"}) {
		t.Errorf("Publish = %q", c.Publish)
	}
	if !slices.Equal(c.DM, []string{"support:*", "u2"}) {
		t.Errorf("DM = %q", c.DM)
	}
	if want := time.Unix(1700000060, 250_000_000); !c.Expiry.Equal(want) || c.Expiry.Location() != time.UTC {
		t.Errorf("Expiry = %v, want %v UTC", c.Expiry, want)
	}
	if want := time.Unix(1699999990, 0); !c.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", c.NotBefore, want)
	}
	if c.Raw["name"] != "Ada" || c.Raw["n"] != 3.0 {
		t.Errorf("Raw = %v", c.Raw)
	}

	// Absent optional claims.
	c, err = v.Verify(signRaw(t, "HS256", testSecret, hdr("HS256"), `{"sub":"u"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Expiry.IsZero() || !c.NotBefore.IsZero() || c.Join != nil || c.Publish != nil || c.DM != nil {
		t.Errorf("absent claims decoded as %+v", c)
	}
	if c.CanJoin("x") || c.CanPublish("x") || c.CanJoin("") || c.CanDM("x") || c.CanDM("") {
		t.Error("claims without patterns grant a room or a recipient")
	}

	// A single string is a one-element list, like join and publish.
	c, err = v.Verify(signRaw(t, "HS256", testSecret, hdr("HS256"), `{"sub":"u","dm":"team-*"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.DM, []string{"team-*"}) || !c.CanDM("team-7") || c.CanDM("u2") {
		t.Errorf("dm string claim: DM = %q", c.DM)
	}
}

func TestClaimsPermissions(t *testing.T) {
	t.Parallel()
	c := &Claims{
		Subject: "u",
		Join:    []string{"room:*", "user:u", "team:?"},
		Publish: []string{"room:general"},
	}
	tests := []struct {
		room          string
		join, publish bool
	}{
		{"room:general", true, true},
		{"room:", true, false},
		{"room:a/b", true, false},
		{"user:u", true, false},
		{"user:v", false, false},
		{"team:x", true, false},
		{"team:xy", false, false},
		{"Room:general", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		if got := c.CanJoin(tt.room); got != tt.join {
			t.Errorf("CanJoin(%q) = %v, want %v", tt.room, got, tt.join)
		}
		if got := c.CanPublish(tt.room); got != tt.publish {
			t.Errorf("CanPublish(%q) = %v, want %v", tt.room, got, tt.publish)
		}
	}
	var nilClaims *Claims
	if nilClaims.CanJoin("room:a") || nilClaims.CanPublish("room:a") || nilClaims.CanDM("u") {
		t.Error("nil claims grant a room or a recipient")
	}
	all := &Claims{Join: []string{"*"}}
	if !all.CanJoin("") || !all.CanJoin("any/thing:at all") {
		t.Error(`"*" does not grant every room`)
	}
}

// TestClaimsCanDM: "dm" patterns name users, and only "dm" grants them —
// rooms a client may join or publish to do not.
func TestClaimsCanDM(t *testing.T) {
	t.Parallel()
	c := &Claims{
		Subject: "u1",
		Join:    []string{"*"},
		Publish: []string{"user:*"},
		DM:      []string{"support-?", "team:acme:*", "u2"},
	}
	for _, tt := range []struct {
		user string
		want bool
	}{
		{"u2", true},
		{"u3", false},
		{"U2", false},
		{"u2 ", false},
		{"support-1", true},
		{"support-é", true},
		{"support-12", false},
		{"team:acme:ada", true},
		{"team:acme:", true},
		{"team:other:ada", false},
		{"user:u2", false},
		{"", false},
	} {
		if got := c.CanDM(tt.user); got != tt.want {
			t.Errorf("CanDM(%q) = %v, want %v", tt.user, got, tt.want)
		}
	}
	if (&Claims{DM: []string{"*"}}).CanDM("") != true {
		t.Error(`dm "*" does not grant every user`)
	}
	if (&Claims{DM: []string{}}).CanDM("u2") {
		t.Error("empty dm list grants a user")
	}
}

// TestIssuerAudience: with Issuer and Audience configured, "iss" must equal
// the issuer and "aud" (a string or a list) must name the audience; each
// refusal has its own sentinel, within ErrClaims.
func TestIssuerAudience(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, Config{Secret: testSecret, Issuer: "https://issuer.example/", Audience: "roomcast"})
	vIss := newVerifier(t, Config{Secret: testSecret, Issuer: "https://issuer.example/"})
	vAud := newVerifier(t, Config{Secret: testSecret, Audience: "roomcast"})
	hs := func(payload string) string { return signRaw(t, "HS256", testSecret, hdr("HS256"), payload) }
	for _, tt := range []struct {
		name    string
		v       *Verifier
		payload string
		want    error // nil, ErrIssuer or ErrAudience
	}{
		{"both ok, aud string", v, `{"sub":"u","iss":"https://issuer.example/","aud":"roomcast"}`, nil},
		{"both ok, aud list", v, `{"sub":"u","iss":"https://issuer.example/","aud":["api","roomcast"]}`, nil},
		{"aud single-element list", v, `{"sub":"u","iss":"https://issuer.example/","aud":["roomcast"]}`, nil},
		{"iss without trailing slash", v, `{"sub":"u","iss":"https://issuer.example","aud":"roomcast"}`, ErrIssuer},
		{"iss other case", v, `{"sub":"u","iss":"HTTPS://issuer.example/","aud":"roomcast"}`, ErrIssuer},
		{"iss missing", v, `{"sub":"u","aud":"roomcast"}`, ErrIssuer},
		{"iss number", v, `{"sub":"u","iss":1,"aud":"roomcast"}`, ErrIssuer},
		{"iss list", v, `{"sub":"u","iss":["https://issuer.example/"],"aud":"roomcast"}`, ErrIssuer},
		{"iss empty", v, `{"sub":"u","iss":"","aud":"roomcast"}`, ErrIssuer},
		{"aud missing", v, `{"sub":"u","iss":"https://issuer.example/"}`, ErrAudience},
		{"aud other", v, `{"sub":"u","iss":"https://issuer.example/","aud":"roomcast-staging"}`, ErrAudience},
		{"aud prefix", v, `{"sub":"u","iss":"https://issuer.example/","aud":"room"}`, ErrAudience},
		{"aud list without it", v, `{"sub":"u","iss":"https://issuer.example/","aud":["api","web"]}`, ErrAudience},
		{"aud empty list", v, `{"sub":"u","iss":"https://issuer.example/","aud":[]}`, ErrAudience},
		{"aud list of non-strings", v, `{"sub":"u","iss":"https://issuer.example/","aud":[1,null,{"roomcast":1}]}`, ErrAudience},
		{"aud nested list", v, `{"sub":"u","iss":"https://issuer.example/","aud":[["roomcast"]]}`, ErrAudience},
		{"aud object", v, `{"sub":"u","iss":"https://issuer.example/","aud":{"roomcast":true}}`, ErrAudience},
		{"aud null", v, `{"sub":"u","iss":"https://issuer.example/","aud":null}`, ErrAudience},
		{"issuer only: aud ignored", vIss, `{"sub":"u","iss":"https://issuer.example/","aud":7}`, nil},
		{"issuer only: wrong", vIss, `{"sub":"u","iss":"https://evil.example/"}`, ErrIssuer},
		{"audience only: iss ignored", vAud, `{"sub":"u","iss":7,"aud":"roomcast"}`, nil},
		{"audience only: wrong", vAud, `{"sub":"u","aud":"x"}`, ErrAudience},
	} {
		c, err := tt.v.Verify(hs(tt.payload))
		if tt.want == nil {
			if err != nil || c == nil {
				t.Errorf("%s: Verify = %v", tt.name, err)
			}
			continue
		}
		other := ErrAudience
		if tt.want == ErrAudience {
			other = ErrIssuer
		}
		if c != nil || !errors.Is(err, tt.want) || !errors.Is(err, ErrClaims) || errors.Is(err, other) {
			t.Errorf("%s: Verify = %+v, %v; want %v (within ErrClaims)", tt.name, c, err, tt.want)
		}
		if !strings.HasPrefix(err.Error(), tt.want.Error()) {
			t.Errorf("%s: error text %q, want %q", tt.name, err, tt.want)
		}
	}
}

func TestVerifyTokenSizeLimit(t *testing.T) {
	t.Parallel()
	token := signRaw(t, "HS256", testSecret, hdr("HS256"), `{"sub":"u"}`)
	at := newVerifier(t, Config{Secret: testSecret, MaxTokenSize: len(token)})
	if _, err := at.Verify(token); err != nil {
		t.Fatalf("token of exactly MaxTokenSize: %v", err)
	}
	under := newVerifier(t, Config{Secret: testSecret, MaxTokenSize: len(token) - 1})
	_, err := under.Verify(token)
	checkVerifyErr(t, err, ErrMalformed)

	// The default admits a token just under 8 KiB.
	v := newVerifier(t, Config{Secret: testSecret})
	pad := strings.Repeat("x", 6000)
	if _, err := v.Verify(signRaw(t, "HS256", testSecret, hdr("HS256"), `{"sub":"u","pad":"`+pad+`"}`)); err != nil {
		t.Fatalf("8000-byte token: %v", err)
	}
}

func TestVerifyErrorTextHidesToken(t *testing.T) {
	t.Parallel()
	k := keys(t)
	v := newVerifier(t, Config{Secret: testSecret})
	for _, token := range []string{
		signRaw(t, "HS256", []byte("wrong"), hdr("HS256"), `{"sub":"secret-user"}`),
		signRaw(t, "HS256", testSecret, hdr("secret-alg"), `{"sub":"secret-user"}`),
		signRaw(t, "RS256", k.rsa, hdr("RS256"), `{"sub":"secret-user"}`),
		signRaw(t, "HS256", testSecret, hdr("HS256"), `{"sub":"secret-user","join":{"secret-room":1}}`),
	} {
		_, err := v.Verify(token)
		if err == nil {
			t.Fatalf("Verify(%q) succeeded", token)
		}
		if msg := err.Error(); strings.Contains(msg, "secret") || strings.Contains(msg, token[:10]) {
			t.Errorf("error text %q reveals token contents", msg)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	k := keys(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cfg    Config
		want   error // errors.Is target; nil with anyErr false: success
		anyErr bool  // any error will do
		algs   []string
	}{
		{"no key", Config{}, ErrNoKey, false, nil},
		{"empty secret", Config{Secret: []byte{}}, ErrNoKey, false, nil},
		{"secret", Config{Secret: testSecret}, nil, false, []string{"HS256", "HS384", "HS512"}},
		{"rsa", Config{PublicKey: &k.rsa.PublicKey}, nil, false, []string{"RS256"}},
		{"ec", Config{PublicKey: &k.ec.PublicKey}, nil, false, []string{"ES256"}},
		{"secret and ec", Config{Secret: testSecret, PublicKey: &k.ec.PublicKey}, nil, false, []string{"HS256", "HS384", "HS512", "ES256"}},
		{"rsa private key", Config{PublicKey: k.rsa}, ErrKey, false, nil},
		{"ec private key", Config{PublicKey: k.ec}, ErrKey, false, nil},
		{"p384 key", Config{PublicKey: &p384.PublicKey}, ErrKey, false, nil},
		{"small rsa", Config{PublicKey: &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1023), E: 65537}}, ErrKey, false, nil},
		{"rsa even exponent", Config{PublicKey: &rsa.PublicKey{N: k.rsa.N, E: 4}}, ErrKey, false, nil},
		{"nil rsa pointer", Config{PublicKey: (*rsa.PublicKey)(nil)}, ErrKey, false, nil},
		{"rsa value not pointer", Config{PublicKey: k.rsa.PublicKey}, ErrKey, false, nil},
		{"pem bytes as key", Config{PublicKey: k.rsaPEM}, ErrKey, false, nil},
		{"negative leeway", Config{Secret: testSecret, Leeway: -time.Second}, nil, true, nil},
		{"negative max size", Config{Secret: testSecret, MaxTokenSize: -1}, nil, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := New(tt.cfg)
			switch {
			case tt.anyErr:
				if err == nil {
					t.Fatal("New succeeded, want an error")
				}
			case tt.want != nil:
				if !errors.Is(err, tt.want) {
					t.Fatalf("New error = %v, want %v", err, tt.want)
				}
			default:
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if got := v.Algorithms(); !slices.Equal(got, tt.algs) {
					t.Fatalf("Algorithms = %q, want %q", got, tt.algs)
				}
			}
		})
	}
}

func TestNewCopiesSecret(t *testing.T) {
	t.Parallel()
	secret := append([]byte(nil), testSecret...)
	v := newVerifier(t, Config{Secret: secret})
	token := signRaw(t, "HS256", testSecret, hdr("HS256"), `{"sub":"u"}`)
	for i := range secret {
		secret[i] = 0
	}
	if _, err := v.Verify(token); err != nil {
		t.Fatalf("Verify after caller reused its secret buffer: %v", err)
	}
}

func TestVerifyDefaultClock(t *testing.T) {
	t.Parallel()
	v, err := New(Config{Secret: testSecret}) // Now defaults to time.Now
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	live := signRaw(t, "HS256", testSecret, hdr("HS256"), fmt.Sprintf(`{"sub":"u","exp":%d}`, now+3600))
	if _, err := v.Verify(live); err != nil {
		t.Fatalf("token valid for an hour: %v", err)
	}
	old := signRaw(t, "HS256", testSecret, hdr("HS256"), fmt.Sprintf(`{"sub":"u","exp":%d}`, now-3600))
	_, err = v.Verify(old)
	checkVerifyErr(t, err, ErrExpired)
}

// TestVerifyConcurrent shares one Verifier (and its pooled HMAC states)
// between goroutines verifying good and bad tokens of every HMAC size.
func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, Config{Secret: testSecret})
	type job struct {
		token string
		sub   string // "" when the token must fail
	}
	var jobs []job
	for i, alg := range []string{"HS256", "HS384", "HS512"} {
		sub := fmt.Sprintf("user-%d", i)
		payload := `{"sub":"` + sub + `"}`
		jobs = append(jobs,
			job{signRaw(t, alg, testSecret, hdr(alg), payload), sub},
			job{signRaw(t, alg, []byte("wrong"), hdr(alg), payload), ""})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 200; i++ {
				j := jobs[(g+i)%len(jobs)]
				c, err := v.Verify(j.token)
				switch {
				case j.sub != "" && (err != nil || c.Subject != j.sub):
					errs <- fmt.Errorf("good token: claims %+v, err %v", c, err)
					return
				case j.sub == "" && !errors.Is(err, ErrSignature):
					errs <- fmt.Errorf("bad token: err %v, want ErrSignature", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRawToASN1(t *testing.T) {
	t.Parallel()
	// Round-trip through encoding/asn1 for edge-case integers.
	ints := [][]byte{
		make([]byte, 32), // zero
		append(make([]byte, 31), 1),
		append([]byte{0x80}, make([]byte, 31)...), // needs a leading 0x00
		append([]byte{0, 0, 0x7f}, make([]byte, 29)...),
		bytes.Repeat([]byte{0xff}, 32),
	}
	for _, r := range ints {
		for _, s := range ints {
			der := rawToASN1(nil, r, s)
			var got struct{ R, S *big.Int }
			rest, err := asn1.Unmarshal(der, &got)
			if err != nil || len(rest) != 0 {
				t.Fatalf("rawToASN1(%x, %x) = %x: %v", r, s, der, err)
			}
			if got.R.Cmp(new(big.Int).SetBytes(r)) != 0 || got.S.Cmp(new(big.Int).SetBytes(s)) != 0 {
				t.Fatalf("rawToASN1(%x, %x) decodes to %v, %v", r, s, got.R, got.S)
			}
			// encoding/asn1 is lenient about minimal encoding; compare with
			// its own (minimal) output too.
			want, err := asn1.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			if string(want) != string(der) {
				t.Fatalf("rawToASN1(%x, %x) = %x, want %x", r, s, der, want)
			}
		}
	}
}
