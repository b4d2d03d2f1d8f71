package core

import (
	"fmt"

	"github.com/roomcast/roomcast/internal/streamid"
)

// ID is a parsed stream entry ID, "<Ms>-<Seq>": the offsets of package queue.
type ID = streamid.ID

// MaxMillis bounds the time part of offsets we accept, so that Lua (whose
// numbers are doubles) compares them exactly and "(ID" never overflows.
const MaxMillis = streamid.MaxMillis

// ParseID parses a canonical "<ms>-<seq>" ID: decimal digits, no sign, no
// leading zeros. Its errors wrap ErrInvalidOffset.
func ParseID(s string) (ID, error) {
	id, err := streamid.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidOffset, s)
	}
	return id, nil
}
