package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"
)

// DefaultMaxTokenSize is the default bound on the length of a token, in bytes.
const DefaultMaxTokenSize = 8 << 10

// Config configures a [Verifier]. At least one of Secret and PublicKey must be
// set; both may be, in which case tokens signed either way are accepted.
type Config struct {
	// Secret is the HMAC key for HS256, HS384 and HS512. It is copied.
	// Defaults to empty: HMAC algorithms are refused.
	Secret []byte

	// PublicKey verifies RS256 (an *rsa.PublicKey of at least 2048 bits) or
	// ES256 (an *ecdsa.PublicKey on P-256). See [LoadPublicKey].
	// Defaults to nil: public-key algorithms are refused.
	PublicKey crypto.PublicKey

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

// New returns a Verifier for cfg. It fails with ErrNoKey when neither Secret
// nor PublicKey is set and with ErrKey when PublicKey is not a supported key.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Secret) == 0 && cfg.PublicKey == nil {
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
func (v *Verifier) Algorithms() []string {
	var algs []string
	if v.hs256 != nil {
		algs = append(algs, "HS256", "HS384", "HS512")
	}
	if v.rsaKey != nil {
		algs = append(algs, "RS256")
	}
	if v.ecKey != nil {
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
	errSub          = fmt.Errorf("%w: sub must be a non-empty string", ErrClaims)
	errExpType      = fmt.Errorf("%w: exp must be a number", ErrClaims)
	errNbfType      = fmt.Errorf("%w: nbf must be a number", ErrClaims)
	errIatType      = fmt.Errorf("%w: iat must be a number", ErrClaims)
	errJoinType     = fmt.Errorf("%w: join must be a string or a list of strings", ErrClaims)
	errPublishType  = fmt.Errorf("%w: publish must be a string or a list of strings", ErrClaims)
	errIssuer       = fmt.Errorf("%w: wrong issuer", ErrClaims)
	errAudience     = fmt.Errorf("%w: wrong audience", ErrClaims)
	errSigWrongSize = fmt.Errorf("%w: wrong signature length", ErrSignature)
)

var b64 = base64.RawURLEncoding.Strict()

// Verify checks token — a compact JWS — and returns its claims. The header's
// "alg" must be one the configured keys support; the signature is checked
// before the payload is decoded; "exp" and "nbf" are checked against Now with
// Leeway; "sub" must be a non-empty string; "join" and "publish" must be a
// string or a list of strings. Errors wrap one of ErrMalformed, ErrAlgorithm,
// ErrSignature, ErrExpired, ErrNotYetValid or ErrClaims.
func (v *Verifier) Verify(token string) (*Claims, error) {
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

	alg, err := v.checkHeader(header)
	if err != nil {
		return nil, err
	}
	if err := v.checkSignature(alg, signingInput, sig); err != nil {
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

// checkHeader decodes the JOSE header and returns the accepted algorithm.
func (v *Verifier) checkHeader(header []byte) (string, error) {
	var h map[string]json.RawMessage
	if err := json.Unmarshal(header, &h); err != nil || h == nil {
		return "", errHeader
	}
	if _, ok := h["crit"]; ok {
		return "", errCrit
	}
	if _, ok := h["b64"]; ok {
		return "", errB64
	}
	rawAlg, ok := h["alg"]
	if !ok {
		return "", errAlgMissing
	}
	var alg string
	if err := json.Unmarshal(rawAlg, &alg); err != nil {
		return "", errAlgUnknown
	}
	if strings.EqualFold(alg, "none") {
		return "", errAlgNone
	}
	var keyed bool
	switch alg {
	case "HS256", "HS384", "HS512":
		keyed = v.hs256 != nil
	case "RS256":
		keyed = v.rsaKey != nil
	case "ES256":
		keyed = v.ecKey != nil
	default:
		return "", errAlgUnknown
	}
	if !keyed {
		return "", errAlgNotKeyed
	}
	return alg, nil
}

// checkSignature verifies sig over input with the key for alg, which
// checkHeader has already matched to a configured key.
func (v *Verifier) checkSignature(alg string, input, sig []byte) error {
	switch alg {
	case "HS256":
		return checkMAC(v.hs256, input, sig)
	case "HS384":
		return checkMAC(v.hs384, input, sig)
	case "HS512":
		return checkMAC(v.hs512, input, sig)
	case "RS256":
		digest := sha256.Sum256(input)
		if rsa.VerifyPKCS1v15(v.rsaKey, crypto.SHA256, digest[:], sig) != nil {
			return ErrSignature
		}
		return nil
	case "ES256":
		if len(sig) != 64 {
			return errSigWrongSize
		}
		digest := sha256.Sum256(input)
		var der [72]byte
		if !ecdsa.VerifyASN1(v.ecKey, digest[:], rawToASN1(der[:0], sig[:32], sig[32:])) {
			return ErrSignature
		}
		return nil
	}
	return errAlgUnknown
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
