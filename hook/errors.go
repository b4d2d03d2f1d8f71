package hook

import "errors"

// Errors of Verify.
var (
	ErrNoSignature  = errors.New("hook: missing signature or timestamp")
	ErrBadSignature = errors.New("hook: signature mismatch")
	ErrStale        = errors.New("hook: timestamp outside the allowed skew")
)
