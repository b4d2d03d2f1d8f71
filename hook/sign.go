package hook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Headers of a signed request.
const (
	HeaderTimestamp = "X-Roomcast-Timestamp"
	HeaderSignature = "X-Roomcast-Signature"
	// HeaderRequestID repeats the body's "id": the same on every retry of
	// one request, so a backend can drop a retry it already handled.
	HeaderRequestID = "X-Roomcast-Request-Id"
)

// DefaultMaxSkew is how far a request's timestamp may be from the
// receiver's clock before Verify refuses it as a replay.
const DefaultMaxSkew = 5 * time.Minute

// Sign returns the X-Roomcast-Signature value of body sent at timestamp
// (unix seconds): "v1=" and the hex HMAC-SHA256 of "<timestamp>.<body>".
func Sign(secret []byte, timestamp string, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a request's signature header against body and its
// timestamp header against now (within maxSkew; zero means
// DefaultMaxSkew). The header may carry several comma-separated "v1="
// values (while a secret is rotated); one match is enough. Any of secrets
// may match.
func Verify(timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration, secrets ...[]byte) error {
	if timestamp == "" || signature == "" {
		return ErrNoSignature
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxSkew || d < -maxSkew {
		return ErrStale
	}
	for _, secret := range secrets {
		want := mac(secret, timestamp, body)
		for _, part := range strings.Split(signature, ",") {
			v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
			if !ok {
				continue
			}
			got, err := hex.DecodeString(v)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrBadSignature
}
