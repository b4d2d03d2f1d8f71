// Package streamid is the Redis stream entry ID, "<ms>-<seq>", as Roomcast
// parses, orders and formats it: the offsets of the per-user queues and the
// positions of the broadcast log are both stream entry IDs (the memory
// implementations make them the same way), so both use this one type.
package streamid

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid is returned by Parse for text that is not a canonical ID.
var ErrInvalid = errors.New("invalid stream entry ID")

// ID is a parsed stream entry ID.
type ID struct{ Ms, Seq uint64 }

// MaxMillis bounds the time part of IDs we accept, so that Lua (whose
// numbers are doubles) compares them exactly and "(ID" never overflows.
const MaxMillis = 1<<53 - 1

// Parse parses a canonical "<ms>-<seq>" ID: decimal digits, no sign, no
// leading zeros, a time part of at most MaxMillis.
func Parse(s string) (ID, error) {
	i := strings.IndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return ID{}, ErrInvalid
	}
	ms, ok1 := decimal(s[:i])
	seq, ok2 := decimal(s[i+1:])
	if !ok1 || !ok2 || ms > MaxMillis {
		return ID{}, ErrInvalid
	}
	return ID{ms, seq}, nil
}

func decimal(s string) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// String formats a as "<ms>-<seq>".
func (a ID) String() string {
	var b [41]byte
	return string(a.Append(b[:0]))
}

// Append appends a's text to b.
func (a ID) Append(b []byte) []byte {
	b = strconv.AppendUint(b, a.Ms, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, a.Seq, 10)
}

// Less reports whether a precedes b in stream order.
func (a ID) Less(b ID) bool {
	return a.Ms < b.Ms || (a.Ms == b.Ms && a.Seq < b.Seq)
}

// Next returns the smallest ID greater than a.
func (a ID) Next() ID {
	if a.Seq == ^uint64(0) {
		return ID{a.Ms + 1, 0}
	}
	return ID{a.Ms, a.Seq + 1}
}
