package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Bounds on a JWK Set document (RFC 7517) beyond the byte limit of the fetch.
const (
	// maxJWKSKeys bounds the "keys" array. Identity providers publish a
	// handful of keys; a token without "kid" is tried against every key of
	// its type, so the bound is also a bound on that work.
	maxJWKSKeys = 100
	// maxRSABits bounds the modulus of a fetched RSA key, which bounds the
	// cost of one RS256 verification.
	maxRSABits = 8192
)

// jwk is one usable verification key of a key set: exactly one of rsa and
// ec is set, and its type alone decides the algorithm it verifies (RS256 or
// ES256).
type jwk struct {
	kid string // "" when the key has no "kid"
	rsa *rsa.PublicKey
	ec  *ecdsa.PublicKey
}

// jwkSet is an immutable snapshot of the usable keys of one JWKS document, in
// document order.
type jwkSet struct {
	keys    []jwk
	skipped int // entries of the document that were not usable
}

// jwkJSON holds the members of a JWK that parseJWK reads. Members are raw so
// that a wrong JSON type skips the one key instead of failing the document.
type jwkJSON struct {
	Kty    json.RawMessage `json:"kty"`
	Kid    json.RawMessage `json:"kid"`
	Use    json.RawMessage `json:"use"`
	KeyOps json.RawMessage `json:"key_ops"`
	Alg    json.RawMessage `json:"alg"`
	N      json.RawMessage `json:"n"`
	E      json.RawMessage `json:"e"`
	Crv    json.RawMessage `json:"crv"`
	X      json.RawMessage `json:"x"`
	Y      json.RawMessage `json:"y"`
	D      json.RawMessage `json:"d"`
}

// parseJWKS decodes a JWK Set document. The document must be a JSON object
// whose "keys" member is an array of at most maxJWKSKeys entries; entries
// that are not usable verification keys (see parseJWK) are skipped and
// counted. A document with no usable key is an error: installing it would
// refuse every token. Errors wrap ErrKeySet.
func parseJWKS(data []byte) (*jwkSet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: document is not a JSON object with a keys array", ErrKeySet)
	}
	if doc.Keys == nil {
		return nil, fmt.Errorf("%w: document has no keys array", ErrKeySet)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("%w: document has %d keys, at most %d are allowed", ErrKeySet, len(doc.Keys), maxJWKSKeys)
	}
	set := &jwkSet{keys: make([]jwk, 0, len(doc.Keys))}
	for _, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			set.skipped++
			continue
		}
		set.keys = append(set.keys, k)
	}
	if len(set.keys) == 0 {
		return nil, fmt.Errorf("%w: document has no usable RS256 or ES256 key (%d skipped)", ErrKeySet, set.skipped)
	}
	return set, nil
}

var errSkip = errors.New("auth: unusable JWK")

// parseJWK decodes one key. It is usable when it is a public RSA key of
// MinRSABits to maxRSABits bits or a public EC key on P-256; its "use", if
// present, is "sig"; its "key_ops", if present, include "verify"; its "alg",
// if present, is the one its type implies (RS256 or ES256); its "kid", if
// present, is a string. Keys carrying private material ("d") are refused:
// a JWKS is public, so such a key is compromised. Symmetric ("oct") keys are
// never used — HMAC keys come only from [Config.Secret].
func parseJWK(raw json.RawMessage) (jwk, error) {
	var j jwkJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return jwk{}, errSkip
	}
	var k jwk
	var ok bool
	if j.Kid != nil {
		if k.kid, ok = jsonString(j.Kid); !ok {
			return jwk{}, errSkip
		}
	}
	if j.Use != nil {
		if use, ok := jsonString(j.Use); !ok || use != "sig" {
			return jwk{}, errSkip
		}
	}
	if j.KeyOps != nil {
		var ops []string
		if json.Unmarshal(j.KeyOps, &ops) != nil || !containsString(ops, "verify") {
			return jwk{}, errSkip
		}
	}
	if j.D != nil {
		return jwk{}, errSkip
	}
	kty, _ := jsonString(j.Kty)
	var wantAlg string
	switch kty {
	case "RSA":
		wantAlg = "RS256"
		n, okN := jsonBytes(j.N)
		e, okE := jsonBytes(j.E)
		if !okN || !okE || len(e) == 0 || len(e) > 4 {
			return jwk{}, errSkip
		}
		exp := new(big.Int).SetBytes(e).Int64()
		if exp > 1<<31-1 { // crypto/rsa's bound
			return jwk{}, errSkip
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}
		if pub.N.BitLen() > maxRSABits {
			return jwk{}, errSkip
		}
		if _, _, err := checkPublicKey(pub); err != nil {
			return jwk{}, errSkip
		}
		k.rsa = pub
	case "EC":
		wantAlg = "ES256"
		if crv, _ := jsonString(j.Crv); crv != "P-256" {
			return jwk{}, errSkip
		}
		x, okX := jsonBytes(j.X)
		y, okY := jsonBytes(j.Y)
		if !okX || !okY || len(x) != 32 || len(y) != 32 { // RFC 7518 §6.2.1.2: full length
			return jwk{}, errSkip
		}
		point := make([]byte, 0, 65)
		point = append(append(append(point, 4), x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
		if err != nil { // not on the curve, or the point at infinity
			return jwk{}, errSkip
		}
		k.ec = pub
	default:
		return jwk{}, errSkip
	}
	if j.Alg != nil {
		if alg, ok := jsonString(j.Alg); !ok || alg != wantAlg {
			return jwk{}, errSkip
		}
	}
	return k, nil
}

// jsonString decodes a raw JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonBytes decodes a raw JSON string holding base64url (RFC 7515 §2:
// unpadded; padding is tolerated since some producers add it).
func jsonBytes(raw json.RawMessage) ([]byte, bool) {
	s, ok := jsonString(raw)
	if !ok || s == "" {
		return nil, false
	}
	b, err := b64.DecodeString(strings.TrimRight(s, "="))
	return b, err == nil
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// candidates returns the keys of the wanted type (RSA when rsaKey, else EC)
// that a token may be checked against. With a kid, only keys with that kid
// count, and found reports whether any key (of any type) has it; without,
// every key of the type is a candidate.
func (s *jwkSet) candidates(kid string, rsaKey bool) (out []jwk, found bool) {
	for _, k := range s.keys {
		if kid != "" && k.kid != kid {
			continue
		}
		found = true
		if (k.rsa != nil) == rsaKey {
			out = append(out, k)
		}
	}
	return out, found
}
