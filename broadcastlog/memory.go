package broadcastlog

import (
	"context"
	"sort"
	"sync"
	"time"
)

var _ Log = (*Memory)(nil)

// MemoryConfig configures NewMemory.
type MemoryConfig struct {
	// Retention bounds the age of entries. Defaults to DefaultRetention.
	Retention time.Duration
	// MaxLen caps each namespace's log. Defaults to DefaultMaxLen.
	MaxLen int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Memory is the Log of a single process.
type Memory struct {
	cfg MemoryConfig

	mu     sync.Mutex
	logs   map[string]*memLog
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

type memLog struct {
	entries []memEntry
	last    Position // newest position ever given
	trimmed Position // newest position trimmed away (zero: none)
	notify  chan struct{}
}

type memEntry struct {
	pos Position
	e   Entry
}

// NewMemory returns an empty Memory log.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Memory{cfg: cfg, logs: map[string]*memLog{}, done: make(chan struct{})}
}

func (m *Memory) log(nsp string) *memLog {
	l := m.logs[nsp]
	if l == nil {
		l = &memLog{notify: make(chan struct{})}
		m.logs[nsp] = l
	}
	return l
}

// Append implements Log.
// AppendAsync implements AsyncAppender: in memory an append waits for
// nothing, so done is called before it returns.
func (m *Memory) AppendAsync(nsp string, e Entry, done func(string, error)) {
	done(m.Append(context.Background(), nsp, e))
}

func (m *Memory) Append(_ context.Context, nsp string, e Entry) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", ErrClosed
	}
	l := m.log(nsp)
	now := uint64(m.cfg.Now().UnixMilli())
	pos := Position{Ms: now}
	if now <= l.last.Ms {
		pos = l.last.Next()
	}
	l.last = pos
	e.ID = pos.String()
	l.entries = append(l.entries, memEntry{pos, e})
	m.trim(l)
	close(l.notify)
	l.notify = make(chan struct{})
	return e.ID, nil
}

// trim drops entries older than the retention or beyond MaxLen.
func (m *Memory) trim(l *memLog) {
	minMs := uint64(max(m.cfg.Now().Add(-m.cfg.Retention).UnixMilli(), 0))
	n := 0
	for n < len(l.entries) && (l.entries[n].pos.Ms < minMs || len(l.entries)-n > m.cfg.MaxLen) {
		n++
	}
	if n > 0 {
		l.trimmed = l.entries[n-1].pos
		l.entries = append(l.entries[:0:0], l.entries[n:]...)
	}
}

// Read implements Log.
func (m *Memory) Read(_ context.Context, nsp, after string, limit int) ([]Entry, error) {
	var p Position
	if after != "" {
		var err error
		if p, err = ParsePosition(after); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	l := m.log(nsp)
	m.trim(l)
	if after == "" {
		p = l.trimmed
	}
	if p.Less(l.trimmed) || l.last.Less(p) {
		return nil, ErrExpired
	}
	return l.after(p, ClampLimit(limit)), nil
}

func (l *memLog) after(p Position, limit int) []Entry {
	i := sort.Search(len(l.entries), func(i int) bool { return p.Less(l.entries[i].pos) })
	var out []Entry
	for ; i < len(l.entries) && len(out) < limit; i++ {
		out = append(out, l.entries[i].e)
	}
	return out
}

// Last implements Log.
func (m *Memory) Last(_ context.Context, nsp string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", ErrClosed
	}
	return m.log(nsp).last.String(), nil
}

// Tail implements Log.
func (m *Memory) Tail(ctx context.Context, nsp, after string, fn func([]Entry, error)) (func(), error) {
	p, err := ParsePosition(after)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.wg.Add(1)
	m.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer m.wg.Done()
		for {
			m.mu.Lock()
			l := m.log(nsp)
			var gap bool
			if p.Less(l.trimmed) {
				gap, p = true, l.trimmed
			}
			batch := l.after(p, maxPageSize)
			wait := l.notify
			m.mu.Unlock()
			if gap {
				fn(nil, ErrExpired)
			}
			if len(batch) > 0 {
				p, _ = ParsePosition(batch[len(batch)-1].ID)
				fn(batch, nil)
				continue
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return
			case <-m.done:
				return
			}
		}
	}()
	return cancel, nil
}

// Close implements Log.
func (m *Memory) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.done)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}
