package queue

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/metrics"
	"github.com/roomcast/roomcast/queue/internal/core"
)

var _ Store = (*Memory)(nil)

// MemoryConfig configures NewMemory.
type MemoryConfig struct {
	// MaxLen bounds the entries of each user's stream (exactly): an Append
	// to a full stream is refused for that user (ErrQueueFull). Defaults to
	// 10000.
	MaxLen int64
	// MaxBytes bounds the payload bytes (Message.Size) of each user's
	// stream (exactly), refusing like MaxLen. Defaults to 1 MiB.
	MaxBytes int64
	// Retention bounds the age of entries; a stream nobody appended to for
	// Retention is dropped. Defaults to 24h.
	Retention time.Duration
	// MaxMembers bounds each durable room. Defaults to 10000.
	MaxMembers int
	// Metrics counts appends and replays. Defaults to none.
	Metrics *metrics.Metrics
}

// Memory is the single-node Store: the same semantics as Redis, held in
// this process (nothing survives a restart).
type Memory struct {
	meter // Replay counts into the Store's metrics through it

	maxLen     int
	maxBytes   int64
	retention  uint64 // ms
	maxMembers int
	met        *metrics.Metrics

	mu        sync.Mutex
	users     map[string]*memUser
	sessions  map[string]memSession
	rooms     map[string]map[string]struct{}
	memberOf  map[string]map[string]struct{} // user → rooms: the reverse of rooms
	lastMs    uint64                         // the clock never goes back
	lastSweep time.Time
	closed    bool
}

// meter is embedded under this unexported name: see core.Meter.
type meter = core.Meter

// memUser is one user's stream and subscribers. dmu serialises appends to
// the user with their deliveries, so subscribers see stream order; it is
// taken before Memory.mu. The other fields are guarded by Memory.mu.
type memUser struct {
	dmu sync.Mutex

	entries []Message
	ids     []core.ID
	bytes   int64   // Size of entries
	last    core.ID // last generated ID
	maxDel  core.ID // greatest trimmed ID
	exists  bool
	expires uint64 // ms; the stream is dropped at this time
	subs    []*memSub
	busy    int // appends in flight
}

type memSub struct {
	fn   func(Message, error)
	done atomic.Bool
}

type memSession struct {
	s       Session
	expires time.Time
}

// NewMemory returns an in-memory Store.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxLen < 0 || cfg.MaxBytes < 0 || cfg.Retention < 0 || cfg.MaxMembers < 0 {
		return nil, fmt.Errorf("%w: negative bound in MemoryConfig", ErrInvalidArgument)
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = DefaultMaxLen
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxMembers == 0 {
		cfg.MaxMembers = DefaultMaxMembers
	}
	return &Memory{
		meter:      core.NewMeter(cfg.Metrics),
		maxLen:     int(cfg.MaxLen),
		maxBytes:   cfg.MaxBytes,
		retention:  uint64(max(cfg.Retention.Milliseconds(), 1)),
		maxMembers: cfg.MaxMembers,
		met:        cfg.Metrics,
		users:      make(map[string]*memUser),
		sessions:   make(map[string]memSession),
		rooms:      make(map[string]map[string]struct{}),
		memberOf:   make(map[string]map[string]struct{}),
		lastSweep:  time.Now(),
	}, nil
}

// now returns the store's clock in ms, which never goes back. Callers hold mu.
func (m *Memory) now() uint64 {
	t := uint64(time.Now().UnixMilli())
	if t < m.lastMs {
		t = m.lastMs
	}
	m.lastMs = t
	return t
}

// expire drops u's stream when it outlived the retention. Callers hold mu.
func (m *Memory) expire(u *memUser, now uint64) {
	if u != nil && u.exists && now >= u.expires {
		clear(u.entries)
		u.entries, u.ids, u.bytes = nil, nil, 0
		u.last, u.maxDel, u.exists = core.ID{}, core.ID{}, false
	}
}

// sweep drops expired streams, sessions and idle users, at most once a
// second. Callers hold mu.
func (m *Memory) sweep() {
	wall := time.Now()
	if wall.Sub(m.lastSweep) < time.Second {
		return
	}
	m.lastSweep = wall
	now := m.now()
	for name, u := range m.users {
		m.expire(u, now)
		if !u.exists && len(u.subs) == 0 && u.busy == 0 {
			delete(m.users, name)
		}
	}
	for pid, s := range m.sessions {
		if !wall.Before(s.expires) {
			delete(m.sessions, pid)
		}
	}
}

// user returns user's state, creating it. Callers hold mu.
func (m *Memory) user(name string) *memUser {
	u := m.users[name]
	if u == nil {
		u = &memUser{}
		m.users[name] = u
	}
	return u
}

// Append implements Store.
func (m *Memory) Append(ctx context.Context, users []string, msg Message) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	uniq, pos, err := core.Dedupe(users)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(uniq))
	var errs []error
	stored := 0
	for i, name := range uniq {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return core.Spread(ids, pos), ErrClosed
		}
		u := m.user(name)
		u.busy++
		m.mu.Unlock()

		if ids[i] = m.appendOne(u, msg); ids[i] != "" {
			stored++
			continue
		}
		if errs == nil {
			errs = make([]error, len(uniq))
		}
		errs[i] = fmt.Errorf("%w: %q", ErrQueueFull, name)
	}
	core.CountAppends(m.met, stored)
	if errs != nil {
		return core.Spread(ids, pos), appendError(errs, pos)
	}
	return core.Spread(ids, pos), nil
}

// appendOne appends msg to u and delivers it, or returns "" when u's
// stream is full.
func (m *Memory) appendOne(u *memUser, msg Message) string {
	u.dmu.Lock()
	defer u.dmu.Unlock()

	m.mu.Lock()
	u.busy--
	now := m.now()
	m.expire(u, now)
	id := core.ID{Ms: now}
	if u.exists && !u.last.Less(id) {
		id = u.last.Next()
	}
	// Entries leave by age only (the retention before the new entry's
	// time); a stream still full after that refuses the message.
	drop := 0
	for drop < len(u.ids) && u.ids[drop].Ms+m.retention <= id.Ms {
		u.bytes -= int64(u.entries[drop].Size())
		drop++
	}
	if drop > 0 {
		u.maxDel = u.ids[drop-1]
		clear(u.entries[:drop])
		u.entries, u.ids = u.entries[drop:], u.ids[drop:]
	}
	size := int64(msg.Size())
	if len(u.entries) >= m.maxLen || u.bytes+size > m.maxBytes {
		m.sweep()
		m.mu.Unlock()
		return ""
	}
	msg.ID = id.String()
	u.entries = append(u.entries, msg)
	u.ids = append(u.ids, id)
	u.bytes += size
	u.last, u.exists = id, true
	u.expires = now + m.retention
	subs := u.subs
	m.sweep()
	m.mu.Unlock()

	for _, s := range subs {
		if !s.done.Load() {
			s.fn(msg, nil)
		}
	}
	return msg.ID
}

// Subscribe implements Store. Deliveries happen in the appending goroutine.
func (m *Memory) Subscribe(ctx context.Context, user string, fn func(Message, error)) (func(), error) {
	if user == "" || fn == nil {
		return nil, fmt.Errorf("%w: empty user or nil fn", ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &memSub{fn: fn}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	u := m.user(user)
	u.subs = append(slices.Clip(u.subs), s)
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.done.Store(true)
			m.mu.Lock()
			if i := slices.Index(u.subs, s); i >= 0 {
				u.subs = slices.Delete(slices.Clone(u.subs), i, i+1)
			}
			m.mu.Unlock()
		})
	}, nil
}

// Read implements Store.
func (m *Memory) Read(ctx context.Context, user, after string, limit int) ([]Message, error) {
	a, err := core.ParseID(after)
	if err != nil {
		return nil, err
	}
	if user == "" {
		return nil, fmt.Errorf("%w: empty user", ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	limit = core.ClampLimit(limit)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	now := m.now()
	if a.Ms+m.retention <= now {
		return nil, fmt.Errorf("%w: %q after %s: older than the retention", ErrOffsetExpired, user, after)
	}
	u := m.users[user]
	m.expire(u, now)
	if u == nil || !u.exists {
		if a.Ms > now {
			return nil, fmt.Errorf("%w: %q after %s: in the future", ErrOffsetExpired, user, after)
		}
		return nil, nil
	}
	if u.last.Less(a) {
		return nil, fmt.Errorf("%w: %q after %s: beyond the last entry", ErrOffsetExpired, user, after)
	}
	if a.Less(u.maxDel) {
		return nil, fmt.Errorf("%w: %q after %s: trimmed", ErrOffsetExpired, user, after)
	}
	i := sort.Search(len(u.ids), func(i int) bool { return a.Less(u.ids[i]) })
	j := min(i+limit, len(u.ids))
	if i == j {
		return nil, nil
	}
	return slices.Clone(u.entries[i:j]), nil
}

// Last implements Store.
func (m *Memory) Last(ctx context.Context, user string) (string, error) {
	if user == "" {
		return "", fmt.Errorf("%w: empty user", ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", ErrClosed
	}
	now := m.now()
	u := m.users[user]
	m.expire(u, now)
	if u != nil && u.exists {
		return u.last.String(), nil
	}
	return core.ID{Ms: now - 1}.String(), nil
}

// SaveSession implements Store.
func (m *Memory) SaveSession(ctx context.Context, s Session, ttl time.Duration) error {
	if s.PID == "" || ttl <= 0 {
		return fmt.Errorf("%w: empty pid or non-positive ttl", ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.Rooms = slices.Clone(s.Rooms)
	s.Data = slices.Clone(s.Data)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.sessions[s.PID] = memSession{s: s, expires: time.Now().Add(ttl)}
	m.sweep()
	return nil
}

// LoadSession implements Store.
func (m *Memory) LoadSession(ctx context.Context, pid string) (Session, error) {
	if pid == "" {
		return Session{}, fmt.Errorf("%w: empty pid", ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return Session{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Session{}, ErrClosed
	}
	s, ok := m.sessions[pid]
	if !ok || !time.Now().Before(s.expires) {
		delete(m.sessions, pid)
		return Session{}, ErrSessionNotFound
	}
	out := s.s
	out.Rooms = slices.Clone(out.Rooms)
	out.Data = slices.Clone(out.Data)
	return out, nil
}

// DeleteSession implements Store.
func (m *Memory) DeleteSession(ctx context.Context, pid string) error {
	if pid == "" {
		return fmt.Errorf("%w: empty pid", ErrInvalidArgument)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.sessions, pid)
	return nil
}

// AddMember implements Store.
func (m *Memory) AddMember(ctx context.Context, room, user string) error {
	if room == "" || user == "" {
		return fmt.Errorf("%w: empty room or user", ErrInvalidArgument)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	r := m.rooms[room]
	if _, ok := r[user]; ok {
		return nil
	}
	if len(r) >= m.maxMembers {
		return fmt.Errorf("%w: %q has %d members", ErrRoomFull, room, len(r))
	}
	if r == nil {
		r = make(map[string]struct{})
		m.rooms[room] = r
	}
	r[user] = struct{}{}
	u := m.memberOf[user]
	if u == nil {
		u = make(map[string]struct{})
		m.memberOf[user] = u
	}
	u[room] = struct{}{}
	return nil
}

// RemoveMember implements Store.
func (m *Memory) RemoveMember(ctx context.Context, room, user string) error {
	if room == "" || user == "" {
		return fmt.Errorf("%w: empty room or user", ErrInvalidArgument)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if r := m.rooms[room]; r != nil {
		delete(r, user)
		if len(r) == 0 {
			delete(m.rooms, room)
		}
	}
	if u := m.memberOf[user]; u != nil {
		delete(u, room)
		if len(u) == 0 {
			delete(m.memberOf, user)
		}
	}
	return nil
}

// MemberOf implements Store.
func (m *Memory) MemberOf(ctx context.Context, user string) ([]string, error) {
	if user == "" {
		return nil, fmt.Errorf("%w: empty user", ErrInvalidArgument)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	out := make([]string, 0, len(m.memberOf[user]))
	for r := range m.memberOf[user] {
		out = append(out, r)
	}
	m.mu.Unlock()
	slices.Sort(out)
	return out, nil
}

// Members implements Store.
func (m *Memory) Members(ctx context.Context, room string, limit int) ([]string, error) {
	if room == "" {
		return nil, fmt.Errorf("%w: empty room", ErrInvalidArgument)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	out := make([]string, 0, len(m.rooms[room]))
	for u := range m.rooms[room] {
		out = append(out, u)
	}
	m.mu.Unlock()
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Ready implements Store.
func (m *Memory) Ready(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Close implements Store: every subscriber is called once with ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	users := make([]*memUser, 0, len(m.users))
	for _, u := range m.users {
		users = append(users, u)
	}
	m.mu.Unlock()
	for _, u := range users {
		u.dmu.Lock() // wait for a delivery in flight
		m.mu.Lock()
		subs := u.subs
		u.subs = nil
		m.mu.Unlock()
		u.dmu.Unlock()
		for _, s := range subs {
			if !s.done.Swap(true) {
				s.fn(Message{}, ErrClosed)
			}
		}
	}
	return nil
}
