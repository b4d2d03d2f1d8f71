package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"
)

// DefaultMaxTokenSize is the default bound on the length of a token, in bytes.
const DefaultMaxTokenSize = 8 << 10

// Config configures a [Verifier]. At least one of Secret, PublicKey and KeySet
// must be set; any combination may be, in which case tokens signed with any
// of them are accepted.
type Config struct {
	// Secret is the HMAC key for HS256, HS384 and HS512. It is copied.
	// Defaults to empty: HMAC algorithms are refused.
	Secret []byte

	// PublicKey verifies RS256 (an *rsa.PublicKey of at least 2048 bits) or
	// ES256 (an *ecdsa.PublicKey on P-256). See [LoadPublicKey].
	// Defaults to nil.
	PublicKey crypto.PublicKey

	// KeySet supplies RS256 and ES256 keys fetched from a JWKS URL; the
	// token's "kid" selects among them (see [Verifier.Verify]). The
	// Verifier does not own it: the caller starts and closes it.
	// Defaults to nil. With neither PublicKey nor KeySet, public-key
	// algorithms are refused.
	KeySet *KeySet

	// Leeway is the clock skew tolerated when checking "exp" and "nbf".
	// Defaults to 0. Negative values are an error.
	Leeway time.Duration

	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time

	// MaxTokenSize bounds the length of a token in bytes; longer tokens are
	// refused with ErrMalformed before any decoding. Defaults to
	// DefaultMaxTokenSize (8 KiB).
	MaxTokenSize int

	// Issuer, when set, must equal the "iss" claim.
	// Defaults to empty: "iss" is not checked.
	Issuer string

	// Audience, when set, must equal the "aud" claim or one of its elements.
	// Defaults to empty: "aud" is not checked.
	Audience string
}

// Verifier checks tokens against the keys it was configured with. It is
// immutable and safe for concurrent use.
type Verifier struct {
	hs256, hs384, hs512 *macPool // nil when Config.Secret is empty
	rsaKey              *rsa.PublicKey
	ecKey               *ecdsa.PublicKey
	keySet              *KeySet
	leeway              time.Duration
	now                 func() time.Time
	maxSize             int
	issuer              string
	audience            string
}

// macPool recycles keyed HMAC states; hmac.New costs two hash states and a
// key schedule, which is most of the work for a short token.
type macPool struct{ pool sync.Pool }

func newMacPool(h func() hash.Hash, secret []byte) *macPool {
	return &macPool{pool: sync.Pool{New: func() any { return hmac.New(h, secret) }}}
}

// New returns a Verifier for cfg. It fails with ErrNoKey when none of Secret,
// PublicKey and KeySet is set and with ErrKey when PublicKey is not a
// supported key.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Secret) == 0 && cfg.PublicKey == nil && cfg.KeySet == nil {
		return nil, ErrNoKey
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("auth: negative leeway %v", cfg.Leeway)
	}
	if cfg.MaxTokenSize < 0 {
		return nil, fmt.Errorf("auth: negative max token size %d", cfg.MaxTokenSize)
	}
	v := &Verifier{
		leeway:   cfg.Leeway,
		now:      cfg.Now,
		maxSize:  cfg.MaxTokenSize,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		keySet:   cfg.KeySet,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxSize == 0 {
		v.maxSize = DefaultMaxTokenSize
	}
	if len(cfg.Secret) > 0 {
		secret := append([]byte(nil), cfg.Secret...)
		v.hs256 = newMacPool(sha256.New, secret)
		v.hs384 = newMacPool(sha512.New384, secret)
		v.hs512 = newMacPool(sha512.New, secret)
	}
	if cfg.PublicKey != nil {
		var err error
		v.rsaKey, v.ecKey, err = checkPublicKey(cfg.PublicKey)
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Algorithms lists the "alg" values this Verifier accepts, in a fixed order.
// A KeySet counts for both RS256 and ES256, whatever keys it holds now.
func (v *Verifier) Algorithms() []string {
	var algs []string
	if v.hs256 != nil {
		algs = append(algs, "HS256", "HS384", "HS512")
	}
	if v.rsaKey != nil || v.keySet != nil {
		algs = append(algs, "RS256")
	}
	if v.ecKey != nil || v.keySet != nil {
		algs = append(algs, "ES256")
	}
	return algs
}

// Fixed explanations wrapped around the sentinels. Preallocated so that
// refusing garbage costs no allocation, and free of token contents so that
// their text can go to the client.
var (
	errEmpty        = fmt.Errorf("%w: empty token", ErrMalformed)
	errTooLarge     = fmt.Errorf("%w: token too large", ErrMalformed)
	errCharacter    = fmt.Errorf("%w: character outside base64url alphabet", ErrMalformed)
	errParts        = fmt.Errorf("%w: want three dot-separated parts", ErrMalformed)
	errEncoding     = fmt.Errorf("%w: bad base64url encoding", ErrMalformed)
	errHeader       = fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	errPayload      = fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	errAlgMissing   = fmt.Errorf("%w: header has no alg", ErrAlgorithm)
	errAlgNone      = fmt.Errorf("%w: unsigned tokens (alg none) are refused", ErrAlgorithm)
	errAlgUnknown   = fmt.Errorf("%w: unsupported alg", ErrAlgorithm)
	errAlgNotKeyed  = fmt.Errorf("%w: alg does not match the configured key", ErrAlgorithm)
	errCrit         = fmt.Errorf("%w: crit header is not supported", ErrAlgorithm)
	errB64          = fmt.Errorf("%w: b64 header is not supported", ErrAlgorithm)
	errKidType      = fmt.Errorf("%w: header kid is not a string", ErrMalformed)
	errSub          = fmt.Errorf("%w: sub must be a non-empty string", ErrClaims)
	errExpType      = fmt.Errorf("%w: exp must be a number", ErrClaims)
	errNbfType      = fmt.Errorf("%w: nbf must be a number", ErrClaims)
	errIatType      = fmt.Errorf("%w: iat must be a number", ErrClaims)
	errJoinType     = fmt.Errorf("%w: join must be a string or a list of strings", ErrClaims)
	errPublishType  = fmt.Errorf("%w: publish must be a string or a list of strings", ErrClaims)
	errDMType       = fmt.Errorf("%w: dm must be a string or a list of strings", ErrClaims)
	errSigWrongSize = fmt.Errorf("%w: wrong signature length", ErrSignature)
)

var b64 = base64.RawURLEncoding.Strict()

// Verify is VerifyContext with a background context: a token that makes the
// KeySet refetch waits at most the KeySet's Timeout.
func (v *Verifier) Verify(token string) (*Claims, error) {
	return v.VerifyContext(context.Background(), token)
}

// VerifyContext checks token — a compact JWS — and returns its claims. The
// header's "alg" must be one the configured keys support; the signature is
// checked before the payload is decoded; "exp" and "nbf" are checked against
// Now with Leeway; "sub" must be a non-empty string; "join", "publish" and
// "dm" must be a string or a list of strings.
//
// An RS256 or ES256 token is checked against the static PublicKey of that
// type first, then against the KeySet's keys of that type: with a "kid"
// header, the keys with that kid; without, every key of the type. When the
// set holds no such key, VerifyContext may wait, within ctx, for a refetch
// (see [KeySet]). HMAC tokens use Secret only and ignore "kid".
//
// Errors wrap one of ErrMalformed, ErrAlgorithm, ErrSignature, ErrUnknownKey,
// ErrExpired, ErrNotYetValid or ErrClaims.
func (v *Verifier) VerifyContext(ctx context.Context, token string) (*Claims, error) {
	if len(token) == 0 {
		return nil, errEmpty
	}
	if len(token) > v.maxSize {
		return nil, errTooLarge
	}
	dot1, dot2 := -1, -1
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c == '.' {
			switch {
			case dot1 < 0:
				dot1 = i
			case dot2 < 0:
				dot2 = i
			default:
				return nil, errParts
			}
			continue
		}
		if !isBase64URL(c) {
			return nil, errCharacter
		}
	}
	if dot2 < 0 || dot1 == 0 || dot2 == dot1+1 {
		return nil, errParts
	}

	// One allocation: the token as bytes (the hash functions want the
	// signing input as a slice) followed by room for the decoded parts.
	buf := make([]byte, len(token), len(token)+b64.DecodedLen(len(token)))
	copy(buf, token)
	signingInput := buf[:dot2]
	header, rest, err := decodePart(buf, buf[:dot1])
	if err != nil {
		return nil, err
	}
	payload, rest, err := decodePart(rest, buf[dot1+1:dot2])
	if err != nil {
		return nil, err
	}
	sig, _, err := decodePart(rest, buf[dot2+1:])
	if err != nil {
		return nil, err
	}

	alg, kid, err := v.checkHeader(header)
	if err != nil {
		return nil, err
	}
	if err := v.checkSignature(ctx, alg, kid, signingInput, sig); err != nil {
		return nil, err
	}

	return v.parseClaims(payload, v.now())
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// decodePart decodes src into the start of dst's spare capacity and returns
// the decoded bytes and the capacity left after them.
func decodePart(dst, src []byte) (out, rest []byte, err error) {
	space := dst[len(dst):cap(dst)]
	n, err := b64.Decode(space, src)
	if err != nil {
		return nil, nil, errEncoding
	}
	return space[:n:n], space[n:n], nil
}

// checkHeader decodes the JOSE header and returns the accepted algorithm and,
// when a KeySet is configured, the "kid" ("" when absent).
func (v *Verifier) checkHeader(header []byte) (alg, kid string, err error) {
	var h map[string]json.RawMessage
	if err := json.Unmarshal(header, &h); err != nil || h == nil {
		return "", "", errHeader
	}
	if _, ok := h["crit"]; ok {
		return "", "", errCrit
	}
	if _, ok := h["b64"]; ok {
		return "", "", errB64
	}
	rawAlg, ok := h["alg"]
	if !ok {
		return "", "", errAlgMissing
	}
	if err := json.Unmarshal(rawAlg, &alg); err != nil {
		return "", "", errAlgUnknown
	}
	if strings.EqualFold(alg, "none") {
		return "", "", errAlgNone
	}
	// The algorithm family must have a key of its own type: HMAC only the
	// Secret, RS256 only RSA keys, ES256 only P-256 keys. A KeySet never
	// holds HMAC keys, so no header can turn a public key into a secret.
	var keyed bool
	switch alg {
	case "HS256", "HS384", "HS512":
		keyed = v.hs256 != nil
	case "RS256":
		keyed = v.rsaKey != nil || v.keySet != nil
	case "ES256":
		keyed = v.ecKey != nil || v.keySet != nil
	default:
		return "", "", errAlgUnknown
	}
	if !keyed {
		return "", "", errAlgNotKeyed
	}
	if rawKid, ok := h["kid"]; ok && v.keySet != nil {
		if err := json.Unmarshal(rawKid, &kid); err != nil {
			return "", "", errKidType
		}
	}
	return alg, kid, nil
}

// checkSignature verifies sig over input with the keys for alg, which
// checkHeader has already matched to a configured key type.
func (v *Verifier) checkSignature(ctx context.Context, alg, kid string, input, sig []byte) error {
	switch alg {
	case "HS256":
		return checkMAC(v.hs256, input, sig)
	case "HS384":
		return checkMAC(v.hs384, input, sig)
	case "HS512":
		return checkMAC(v.hs512, input, sig)
	case "RS256":
		digest := sha256.Sum256(input)
		if v.rsaKey != nil && rsa.VerifyPKCS1v15(v.rsaKey, crypto.SHA256, digest[:], sig) == nil {
			return nil
		}
		return v.checkKeySet(ctx, kid, true, v.rsaKey != nil, func(k jwk) bool {
			return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest[:], sig) == nil
		})
	case "ES256":
		if len(sig) != 64 {
			return errSigWrongSize
		}
		digest := sha256.Sum256(input)
		var buf [72]byte
		der := rawToASN1(buf[:0], sig[:32], sig[32:])
		if v.ecKey != nil && ecdsa.VerifyASN1(v.ecKey, digest[:], der) {
			return nil
		}
		return v.checkKeySet(ctx, kid, false, v.ecKey != nil, func(k jwk) bool {
			return ecdsa.VerifyASN1(k.ec, digest[:], der)
		})
	}
	return errAlgUnknown
}

// checkKeySet runs verify over the KeySet's candidate keys once the static
// key of the same type (if staticTried) has failed.
func (v *Verifier) checkKeySet(ctx context.Context, kid string, rsaKey, staticTried bool, verify func(jwk) bool) error {
	if v.keySet == nil {
		return ErrSignature
	}
	keys, err := v.keySet.keysFor(ctx, kid, rsaKey)
	if err != nil {
		if kid == "" && staticTried && errors.Is(err, ErrUnknownKey) {
			// A kid-less token had a key to fail against: the static one.
			return ErrSignature
		}
		return err
	}
	for _, k := range keys {
		if verify(k) {
			return nil
		}
	}
	return ErrSignature
}

func checkMAC(p *macPool, input, sig []byte) error {
	mac := p.pool.Get().(hash.Hash)
	mac.Reset()
	mac.Write(input)
	var sum [sha512.Size]byte
	ok := hmac.Equal(mac.Sum(sum[:0]), sig)
	p.pool.Put(mac)
	if !ok {
		return ErrSignature
	}
	return nil
}

// rawToASN1 appends the DER encoding of the ECDSA signature (r, s), given as
// unsigned big-endian integers, to dst.
func rawToASN1(dst, r, s []byte) []byte {
	dst = append(dst, 0x30, 0) // SEQUENCE, length patched below
	dst = appendASN1Int(dst, r)
	dst = appendASN1Int(dst, s)
	dst[1] = byte(len(dst) - 2) // at most 2*(2+33) bytes: short form
	return dst
}

func appendASN1Int(dst, b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) == 0 {
		return append(dst, 0x02, 1, 0)
	}
	if b[0]&0x80 != 0 {
		dst = append(dst, 0x02, byte(len(b)+1), 0)
	} else {
		dst = append(dst, 0x02, byte(len(b)))
	}
	return append(dst, b...)
}
