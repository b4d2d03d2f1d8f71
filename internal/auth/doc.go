// Package auth verifies the JSON Web Tokens that clients present in their
// Socket.IO CONNECT auth payload and answers the room-permission questions the
// gateway asks about them.
//
// A token is a compact JWS (RFC 7515) whose payload is a JWT claims set
// (RFC 7519). The verifier is written against the standard library only and
// accepts exactly the algorithms its configured keys support:
//
//   - HS256, HS384, HS512 when [Config.Secret] is set;
//   - RS256 when [Config.PublicKey] is an *rsa.PublicKey (2048 bits or more);
//   - ES256 when [Config.PublicKey] is an *ecdsa.PublicKey on P-256, with the
//     JWS signature format (R||S, 64 bytes), not ASN.1.
//
// Everything else is refused before any key is used: "none" in any spelling,
// an HMAC token when only a public key is configured (the classic algorithm
// confusion, where the public key's PEM is used as the HMAC secret), headers
// carrying "crit", tokens larger than [Config.MaxTokenSize], and any byte
// outside the base64url alphabet (so padding, whitespace and non-canonical
// encodings too). Keys come only from [Config]: "kid", "jku", "jwk", "x5u"
// and "x5c" header parameters are ignored, never fetched or trusted. Claims
// are decoded only after the signature has been checked.
//
// The claims the gateway relies on are "sub" (the user id, required), "exp"
// and "nbf" (checked against [Config.Now] with [Config.Leeway]) and "join" /
// "publish": glob patterns (see [Match]) naming the rooms a client may join or
// publish to.
//
// Errors returned by [Verifier.Verify] wrap exactly one of the sentinels in
// errors.go; their text never contains key material or token contents, so it
// can be sent to the client in a CONNECT_ERROR.
//
// # Concurrency
//
// A [Verifier] is immutable after [New] and safe for concurrent use by any
// number of goroutines; it starts no goroutines. A [Claims] value is owned by
// the caller of Verify: its methods only read it, so it may be shared between
// goroutines as long as nobody modifies it. [Match], [LoadPublicKey] and
// [Sign] are pure functions safe to call concurrently.
package auth
