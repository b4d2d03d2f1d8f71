package ratelimit

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
)

// MemoryCounter is a Counter for a single node. It has no goroutine.
type MemoryCounter struct {
	seed   maphash.Seed
	shards [numShards]countShard
}

type countShard struct {
	mu     sync.Mutex
	counts map[string]int
	_      [64]byte
}

// NewMemoryCounter returns an empty MemoryCounter.
func NewMemoryCounter() *MemoryCounter {
	c := &MemoryCounter{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].counts = make(map[string]int)
	}
	return c
}

func (c *MemoryCounter) shardOf(key string) *countShard {
	return &c.shards[maphash.String(c.seed, key)%numShards]
}

// Acquire counts a connection for key; see Counter. It never blocks and
// ignores ctx.
func (c *MemoryCounter) Acquire(_ context.Context, key string, max int) (func(), error) {
	if !c.tryAdd(key, max) {
		return nil, ErrTooMany
	}
	return once(func() { c.add(key, -1) }), nil
}

// tryAdd counts one more for key if it holds less than max (max <= 0: no
// cap).
func (c *MemoryCounter) tryAdd(key string, max int) bool {
	s := c.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.counts[key]
	if max > 0 && n >= max {
		return false
	}
	if !ok {
		key = strings.Clone(key)
	}
	s.counts[key] = n + 1
	return true
}

// add changes key's count by d; a key at 0 is forgotten.
func (c *MemoryCounter) add(key string, d int) {
	s := c.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.counts[key]
	if !ok {
		key = strings.Clone(key)
	}
	if n += d; n > 0 {
		s.counts[key] = n
	} else {
		delete(s.counts, key)
	}
}

// Count returns the connections key holds.
func (c *MemoryCounter) Count(key string) int {
	s := c.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key]
}

// Keys returns the number of keys holding at least one connection.
func (c *MemoryCounter) Keys() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.counts)
		s.mu.Unlock()
	}
	return n
}

// Close does nothing: a MemoryCounter has no goroutine.
func (c *MemoryCounter) Close() error { return nil }
