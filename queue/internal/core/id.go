package core

import (
	"fmt"
	"strconv"
	"strings"
)

// ID is a parsed stream entry ID, "<Ms>-<Seq>": the offsets of package queue.
type ID struct{ Ms, Seq uint64 }

// MaxMillis bounds the time part of offsets we accept, so that Lua (whose
// numbers are doubles) compares them exactly and "(ID" never overflows.
const MaxMillis = 1<<53 - 1

// ParseID parses a canonical "<ms>-<seq>" ID: decimal digits, no sign, no
// leading zeros. Its errors wrap ErrInvalidOffset.
func ParseID(s string) (ID, error) {
	i := strings.IndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidOffset, s)
	}
	ms, ok1 := parseDecimal(s[:i])
	seq, ok2 := parseDecimal(s[i+1:])
	if !ok1 || !ok2 || ms > MaxMillis {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidOffset, s)
	}
	return ID{ms, seq}, nil
}

func parseDecimal(s string) (uint64, bool) {
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

func (a ID) String() string {
	var b [41]byte
	out := strconv.AppendUint(b[:0], a.Ms, 10)
	out = append(out, '-')
	out = strconv.AppendUint(out, a.Seq, 10)
	return string(out)
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
