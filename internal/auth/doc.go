// Package auth verifies the JSON Web Tokens that clients present in their
// Socket.IO CONNECT auth payload and answers the permission questions the
// gateway asks about them: which rooms a client may join and publish to, and
// which users it may send direct messages to.
//
// A token is a compact JWS (RFC 7515) whose payload is a JWT claims set
// (RFC 7519). The verifier is written against the standard library only and
// accepts exactly the algorithms its configured keys support:
//
//   - HS256, HS384, HS512 when [Config.Secret] is set;
//   - RS256 with an *rsa.PublicKey (2048 bits or more) as [Config.PublicKey]
//     or an RSA key of [Config.KeySet];
//   - ES256 with an *ecdsa.PublicKey on P-256 as [Config.PublicKey] or an EC
//     key of [Config.KeySet], with the JWS signature format (R||S, 64
//     bytes), not ASN.1.
//
// Everything else is refused before any key is used: "none" in any spelling,
// an HMAC token when no Secret is configured (the classic algorithm
// confusion, where a public key — its PEM, its modulus, the JWKS document —
// is used as the HMAC secret), headers carrying "crit", tokens larger than
// [Config.MaxTokenSize], and any byte outside the base64url alphabet (so
// padding, whitespace and non-canonical encodings too). The key's type
// decides the algorithm family, never the header alone: HMAC keys come only
// from Secret (a key set never yields one), an RS256 token is checked only
// against RSA keys and an ES256 token only against P-256 keys, so a "kid"
// naming a key of the other type is refused. Keys come only from [Config]:
// the "jku", "jwk", "x5u" and "x5c" header parameters are ignored, never
// fetched or trusted, and "kid" only selects among the keys of the KeySet.
// Claims are decoded only after the signature has been checked.
//
// The claims the gateway relies on are "sub" (the user id, required), "exp"
// and "nbf" (checked against [Config.Now] with [Config.Leeway]), "iss" and
// "aud" (checked when [Config.Issuer] and [Config.Audience] are set), and
// three lists of glob patterns (see [Match]), each a string or a list of
// strings: "join" and "publish" name rooms ([Claims.CanJoin],
// [Claims.CanPublish]); "dm" names user ids ([Claims.CanDM]).
//
// Errors returned by [Verifier.Verify] wrap exactly one of the sentinels in
// errors.go; their text never contains key material or token contents, so it
// can be sent to the client in a CONNECT_ERROR.
//
// # Key sets (JWKS)
//
// A [KeySet] fetches an identity provider's JWK Set (RFC 7517) from a URL
// and keeps its usable keys — RSA of 2048 to 8192 bits and EC P-256, with
// "use" "sig" or none and an "alg" matching the type or none; other entries
// are skipped — as an immutable snapshot that Verify reads without locking.
//
// Key selection: a token with a "kid" is checked against the keys of the set
// that carry that kid and the token's type; a token without one is checked
// against every key of its type, in document order. Tokens minted by a
// provider that publishes a single key often carry no kid, and the set is
// bounded (100 entries), so trying each key is cheap and safe: the type
// still decides the algorithm. A static [Config.PublicKey] of the token's
// type is tried first, whatever the kid.
//
// Refresh: [KeySet.Start] fetches at once, then RefreshInterval (5 min)
// after each successful fetch, MinRefetchInterval (30 s) after a failed one.
// When a token needs a key the set lacks (an unknown kid, or no key of its
// type yet), Verify triggers one fetch — at most one per MinRefetchInterval,
// shared by every token that arrives meanwhile — and waits for it (within
// its context and the set's Timeout), so that a rotated key is picked up at
// once while a flood of made-up kids cannot hammer the endpoint. A failed
// fetch (transport error, timeout, non-200 status, body over MaxBodyBytes,
// not a JWKS document, no usable key) keeps the last good keys and is
// reported through [KeySetConfig.OnError] and [KeySet.Status].
//
// # Concurrency
//
// A [Verifier] is immutable after [New] and safe for concurrent use by any
// number of goroutines; it starts no goroutines and does not own its KeySet.
// A [KeySet] is safe for concurrent use; its keys are an atomically swapped
// snapshot, and one mutex guards its fetch state (it is never held while
// fetching or calling OnError, and no other lock is taken under it). It owns
// the goroutines it starts — the refresh loop and one per fetch, at most one
// fetch at a time — and [KeySet.Close] cancels and waits for all of them.
// A [Claims] value is owned by the caller of Verify: its methods only read
// it, so it may be shared between goroutines as long as nobody modifies it.
// [Match], [LoadPublicKey] and [Sign] are pure functions safe to call
// concurrently.
package auth
