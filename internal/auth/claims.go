package auth

import (
	"encoding/json"
	"math"
	"time"
)

// Claims are the verified claims of a token.
type Claims struct {
	// Subject is "sub", the user id; Verify guarantees it is non-empty.
	Subject string
	// Join holds the "join" glob patterns: rooms the client may join.
	// A single string claim becomes a one-element list. Nil when absent.
	Join []string
	// Publish holds the "publish" glob patterns: rooms the client may
	// publish to. A single string claim becomes a one-element list.
	Publish []string
	// DM holds the "dm" glob patterns: user ids (not rooms) the client may
	// send direct messages to. A single string claim becomes a one-element
	// list. Nil when absent.
	DM []string
	// Expiry is "exp" and NotBefore is "nbf", in UTC; the zero time when
	// absent.
	Expiry, NotBefore time.Time
	// Raw holds every claim as decoded by encoding/json (numbers are
	// float64, objects map[string]any, arrays []any).
	Raw map[string]any
}

// CanJoin reports whether room matches one of the "join" patterns.
// A nil *Claims may join nothing.
func (c *Claims) CanJoin(room string) bool {
	return c != nil && matchAny(c.Join, room)
}

// CanPublish reports whether room matches one of the "publish" patterns.
// A nil *Claims may publish nowhere.
func (c *Claims) CanPublish(room string) bool {
	return c != nil && matchAny(c.Publish, room)
}

// CanDM reports whether user matches one of the "dm" patterns: whether the
// client may send user a direct message. A nil *Claims may message nobody.
func (c *Claims) CanDM(user string) bool {
	return c != nil && matchAny(c.DM, user)
}

func matchAny(patterns []string, room string) bool {
	for _, p := range patterns {
		if Match(p, room) {
			return true
		}
	}
	return false
}

// parseClaims decodes and type-checks the payload, then checks "exp" and
// "nbf" against now. Type errors win over time errors.
func (v *Verifier) parseClaims(payload []byte, now time.Time) (*Claims, error) {
	var raw map[string]any
	if err := json.Unmarshal(payload, &raw); err != nil || raw == nil {
		return nil, errPayload
	}
	c := &Claims{Raw: raw}

	sub, ok := raw["sub"].(string)
	if !ok || sub == "" {
		return nil, errSub
	}
	c.Subject = sub

	hasExp, err := numericDate(raw, "exp", errExpType, &c.Expiry)
	if err != nil {
		return nil, err
	}
	hasNbf, err := numericDate(raw, "nbf", errNbfType, &c.NotBefore)
	if err != nil {
		return nil, err
	}
	var iat time.Time
	if _, err = numericDate(raw, "iat", errIatType, &iat); err != nil {
		return nil, err
	}
	if c.Join, err = patterns(raw, "join", errJoinType); err != nil {
		return nil, err
	}
	if c.Publish, err = patterns(raw, "publish", errPublishType); err != nil {
		return nil, err
	}
	if c.DM, err = patterns(raw, "dm", errDMType); err != nil {
		return nil, err
	}

	if v.issuer != "" {
		if iss, _ := raw["iss"].(string); iss != v.issuer {
			return nil, ErrIssuer
		}
	}
	if v.audience != "" && !hasAudience(raw["aud"], v.audience) {
		return nil, ErrAudience
	}

	// RFC 7519: now must be before exp and not before nbf, give or take the
	// leeway.
	if hasExp && !now.Add(-v.leeway).Before(c.Expiry) {
		return nil, ErrExpired
	}
	if hasNbf && now.Add(v.leeway).Before(c.NotBefore) {
		return nil, ErrNotYetValid
	}
	return c, nil
}

// maxNumericDate bounds dates far enough out (about 285 million years) to
// mean "never" while keeping float-to-int conversion and time arithmetic
// well-defined.
const maxNumericDate = 1 << 53

// numericDate reads an optional NumericDate claim — a JSON number of seconds
// since the Unix epoch, possibly fractional — into *t and reports whether it
// was present.
func numericDate(raw map[string]any, name string, typeErr error, t *time.Time) (bool, error) {
	x, present := raw[name]
	if !present {
		return false, nil
	}
	f, ok := x.(float64)
	if !ok {
		return false, typeErr
	}
	f = math.Max(-maxNumericDate, math.Min(maxNumericDate, f))
	sec := math.Floor(f)
	nsec := math.Round((f - sec) * 1e9)
	*t = time.Unix(int64(sec), int64(nsec)).UTC()
	return true, nil
}

// patterns reads an optional claim holding a string or a list of strings.
func patterns(raw map[string]any, name string, typeErr error) ([]string, error) {
	x, present := raw[name]
	if !present {
		return nil, nil
	}
	switch x := x.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, typeErr
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, typeErr
}

// hasAudience reports whether aud (a string or a list of strings) names want.
func hasAudience(aud any, want string) bool {
	switch aud := aud.(type) {
	case string:
		return aud == want
	case []any:
		for _, a := range aud {
			if s, ok := a.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}
