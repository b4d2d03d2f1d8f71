package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
)

// Sign mints a compact JWS carrying claims, for tests, interop checks and load
// generators; the gateway itself only verifies. alg is one of:
//
//   - "HS256", "HS384", "HS512": key is the secret, as []byte or string;
//   - "RS256": key is an *rsa.PrivateKey;
//   - "ES256": key is an *ecdsa.PrivateKey on P-256 (R||S signature).
//
// The header is {"alg":alg,"typ":"JWT"}; claims are encoded with
// encoding/json (nil encodes as {}). Sign does not add or check any claim.
// An unknown alg gives ErrAlgorithm, a key of the wrong kind ErrKey.
func Sign(alg string, key any, claims map[string]any) (string, error) {
	var newHash func() hash.Hash
	switch alg {
	case "HS256", "RS256", "ES256":
		newHash = sha256.New
	case "HS384":
		newHash = sha512.New384
	case "HS512":
		newHash = sha512.New
	default:
		return "", fmt.Errorf("%w: cannot sign with %q", ErrAlgorithm, alg)
	}

	if claims == nil {
		claims = map[string]any{}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("auth: encode claims: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(`{"alg":"`+alg+`","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)

	var sig []byte
	switch alg[:2] {
	case "HS":
		var secret []byte
		switch k := key.(type) {
		case []byte:
			secret = k
		case string:
			secret = []byte(k)
		default:
			return "", fmt.Errorf("%w: %s needs a []byte or string secret, got %T", ErrKey, alg, key)
		}
		if len(secret) == 0 {
			return "", fmt.Errorf("%w: empty %s secret", ErrKey, alg)
		}
		mac := hmac.New(newHash, secret)
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	case "RS":
		k, ok := key.(*rsa.PrivateKey)
		if !ok || k == nil {
			return "", fmt.Errorf("%w: RS256 needs an *rsa.PrivateKey, got %T", ErrKey, key)
		}
		digest := sha256.Sum256([]byte(input))
		if sig, err = rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:]); err != nil {
			return "", fmt.Errorf("%w: RS256: %v", ErrKey, err)
		}
	case "ES":
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k == nil || k.Curve != elliptic.P256() {
			return "", fmt.Errorf("%w: ES256 needs an *ecdsa.PrivateKey on P-256, got %T", ErrKey, key)
		}
		digest := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			return "", fmt.Errorf("%w: ES256: %v", ErrKey, err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + enc.EncodeToString(sig), nil
}
