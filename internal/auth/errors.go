package auth

import "errors"

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
	// ErrExpired: "exp" is not after the current time (plus leeway).
	ErrExpired = errors.New("auth: token expired")
	// ErrNotYetValid: "nbf" is after the current time (plus leeway).
	ErrNotYetValid = errors.New("auth: token not yet valid")
	// ErrClaims: a claim is missing or has the wrong type or value ("sub"
	// absent or empty, "exp" not a number, "join" not a string or list of
	// strings, issuer or audience mismatch).
	ErrClaims = errors.New("auth: invalid claims")
)

// Errors returned while configuring keys and signing ([New], [LoadPublicKey],
// [Sign]); they are about the server's own configuration, not a client's token.
var (
	// ErrNoKey: [New] was given neither a Secret nor a PublicKey.
	ErrNoKey = errors.New("auth: no key configured")
	// ErrKey: a key is of an unsupported type, curve or size, or cannot be
	// parsed.
	ErrKey = errors.New("auth: unsupported key")
)
