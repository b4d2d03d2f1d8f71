// Package core holds what the Stores of package queue and its
// subpackages (the memory Store in queue, the Redis Store in
// queue/redisqueue) share and users never call: stream entry IDs, the
// argument checks and page size of the Store contract, the de-duplication
// of an Append's users, and the metrics every Store records. It does not
// import go-redis.
package core

import (
	"errors"
	"fmt"
	"slices"
)

// Sentinels the shared code returns; package queue exports them under the
// same names (queue.ErrInvalidOffset, queue.ErrInvalidArgument).
var (
	ErrInvalidOffset   = errors.New("queue: invalid offset")
	ErrInvalidArgument = errors.New("queue: invalid argument")
)

const (
	// DefaultPageSize is the page size of Read and Replay when none is
	// given (queue.DefaultPageSize).
	DefaultPageSize = 100
	// maxPageSize caps one Read.
	maxPageSize = 10000
)

// ClampLimit returns the number of entries a Read of limit returns at most.
func ClampLimit(limit int) int {
	if limit <= 0 {
		return DefaultPageSize
	}
	return min(limit, maxPageSize)
}

// Dedupe returns the distinct users in order and, for each input position,
// the index of its user in the distinct list.
func Dedupe(users []string) (uniq []string, pos []int, err error) {
	pos = make([]int, len(users))
	var seen map[string]int // only for long lists; short ones are scanned
	if len(users) > 16 {
		seen = make(map[string]int, len(users))
	}
	uniq = users[:0:0]
	for i, u := range users {
		if u == "" {
			return nil, nil, fmt.Errorf("%w: empty user", ErrInvalidArgument)
		}
		j, ok := -1, false
		if seen != nil {
			j, ok = seen[u]
		} else if j = slices.Index(uniq, u); j >= 0 {
			ok = true
		}
		if !ok {
			j = len(uniq)
			if seen != nil {
				seen[u] = j
			}
			uniq = append(uniq, u)
		}
		pos[i] = j
	}
	return uniq, pos, nil
}

// Spread maps the IDs of distinct users back to the caller's positions.
func Spread(ids []string, pos []int) []string {
	out := make([]string, len(pos))
	for i, p := range pos {
		out[i] = ids[p]
	}
	return out
}
