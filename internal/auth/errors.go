package auth

import (
	"errors"
	"fmt"
)

// Errors returned by [Verifier.Verify]. Each is a distinct value for
// errors.Is; the returned error may wrap one with a short, fixed explanation
// that is still fit to show a client.
var (
	// ErrMalformed: the token is not a well-formed compact JWS (wrong number
	// of parts, bad base64url, header or payload not a JSON object, too large).
	ErrMalformed = errors.New("auth: malformed token")
	// ErrAlgorithm: the header's "alg" is missing, "none", unknown, or not
	// supported by the configured key; or the header is otherwise refused
	// ("crit", "b64").
	ErrAlgorithm = errors.New("auth: algorithm not allowed")
	// ErrSignature: the signature does not verify with the configured key.
	ErrSignature = errors.New("auth: invalid signature")
	// ErrUnknownKey: the token needs a key from [Config.KeySet] that the set
	// does not hold — its "kid" is unknown even after the refetch the set
	// allows, or the set has no key of the token's type, or it has never
	// been fetched successfully.
	ErrUnknownKey = errors.New("auth: unknown signing key")
	// ErrExpired: "exp" is not after the current time (plus leeway).
	ErrExpired = errors.New("auth: token expired")
	// ErrNotYetValid: "nbf" is after the current time (plus leeway).
	ErrNotYetValid = errors.New("auth: token not yet valid")
	// ErrClaims: a claim is missing or has the wrong type or value ("sub"
	// absent or empty, "exp" not a number, "join" not a string or list of
	// strings, issuer or audience mismatch).
	ErrClaims = errors.New("auth: invalid claims")
)

// Finer reasons within ErrClaims, for callers that count why tokens are
// refused: errors.Is(err, ErrIssuer) implies errors.Is(err, ErrClaims).
var (
	// ErrIssuer: [Config.Issuer] is set and "iss" is missing, not a string
	// or different.
	ErrIssuer = fmt.Errorf("%w: wrong issuer", ErrClaims)
	// ErrAudience: [Config.Audience] is set and "aud" is missing or neither
	// equal to it nor a list containing it.
	ErrAudience = fmt.Errorf("%w: wrong audience", ErrClaims)
)

// Errors returned while configuring keys, fetching key sets and signing
// ([New], [LoadPublicKey], [NewKeySet], [KeySet.Refresh], [KeySetConfig.OnError],
// [Sign]); they are about the server's own configuration, not a client's
// token, and may name URLs and hosts.
var (
	// ErrNoKey: [New] was given no Secret, PublicKey or KeySet.
	ErrNoKey = errors.New("auth: no key configured")
	// ErrKey: a key is of an unsupported type, curve or size, or cannot be
	// parsed.
	ErrKey = errors.New("auth: unsupported key")
	// ErrKeySet: fetching or decoding a JWK Set failed: bad configuration,
	// transport error, HTTP status other than 200, body too large, not a
	// JWKS document, or no usable key in it. A [KeySet] keeps its last good
	// keys when a fetch fails.
	ErrKeySet = errors.New("auth: key set fetch failed")
)
