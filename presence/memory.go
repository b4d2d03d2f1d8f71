package presence

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Memory is the Store of a single node: every socket is this node's, so
// there is nothing to sweep.
type Memory struct {
	node     string
	listener Listener
	now      func() time.Time

	mu      sync.Mutex
	seq     int64
	sockets map[string]bool      // nsp + "\x00" + sid of connected sockets
	rooms   map[roomKey]*memRoom // occupied rooms
	ticks   map[roomKey]time.Time
}

var _ Store = (*Memory)(nil)

type roomKey struct{ nsp, room string }

type memRoom struct {
	gen     string
	sockets map[string]string // sid -> user
	members map[string]*memMember
}

type memMember struct {
	count int
	gen   string
	info  json.RawMessage
}

// MemoryConfig configures a Memory store.
type MemoryConfig struct {
	// Node names this node in events. Defaults to "local".
	Node string
	// Listener is told of every event. Optional.
	Listener Listener
}

// NewMemory returns an empty Memory store.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.Node == "" {
		cfg.Node = "local"
	}
	return &Memory{
		node: cfg.Node, listener: cfg.Listener, now: time.Now,
		sockets: make(map[string]bool), rooms: make(map[roomKey]*memRoom), ticks: make(map[roomKey]time.Time),
	}
}

func (m *Memory) nextGen() string {
	m.seq++
	return strconv.FormatInt(m.now().UnixMicro(), 10) + "-" + strconv.FormatInt(m.seq, 10)
}

func (m *Memory) event(typ string, s Socket, room, gen string, members int) Event {
	e := Event{Type: typ, Namespace: s.Namespace, Room: room, Socket: s.ID, User: s.User, Node: m.node,
		Members: members, Time: m.now().UnixMilli()}
	switch typ {
	case EventConnect, EventDisconnect:
		e.ID = EventID(typ, s.Namespace, "", s.ID, "")
	case EventOccupied, EventVacated:
		e.ID = EventID(typ, s.Namespace, room, "", gen)
		e.Socket, e.User = "", ""
	default:
		e.ID = EventID(typ, s.Namespace, room, s.User, gen)
	}
	return e
}

func (m *Memory) tell(events []Event) []Event {
	if len(events) > 0 && m.listener != nil {
		m.listener(events)
	}
	return events
}

// Connect implements Store.
func (m *Memory) Connect(_ context.Context, s Socket) ([]Event, error) {
	m.mu.Lock()
	k := s.Namespace + "\x00" + s.ID
	if m.sockets[k] {
		m.mu.Unlock()
		return nil, nil
	}
	m.sockets[k] = true
	events := []Event{m.event(EventConnect, s, "", "", 0)}
	m.mu.Unlock()
	return m.tell(events), nil
}

// Disconnect implements Store.
func (m *Memory) Disconnect(_ context.Context, s Socket, reason string) ([]Event, error) {
	m.mu.Lock()
	k := s.Namespace + "\x00" + s.ID
	if !m.sockets[k] {
		m.mu.Unlock()
		return nil, nil
	}
	delete(m.sockets, k)
	e := m.event(EventDisconnect, s, "", "", 0)
	e.Reason = reason
	m.mu.Unlock()
	return m.tell([]Event{e}), nil
}

// Join implements Store.
func (m *Memory) Join(_ context.Context, s Socket, room string) ([]Event, error) {
	m.mu.Lock()
	rk := roomKey{s.Namespace, room}
	r := m.rooms[rk]
	var events []Event
	if r == nil {
		r = &memRoom{gen: m.nextGen(), sockets: make(map[string]string), members: make(map[string]*memMember)}
		m.rooms[rk] = r
		events = append(events, m.event(EventOccupied, s, room, r.gen, 1))
	}
	if _, ok := r.sockets[s.ID]; ok {
		m.mu.Unlock()
		return nil, nil
	}
	r.sockets[s.ID] = s.User
	mem := r.members[s.User]
	if mem == nil {
		mem = &memMember{gen: m.nextGen(), info: s.Info}
		r.members[s.User] = mem
		e := m.event(EventJoin, s, room, mem.gen, len(r.members))
		e.Info = s.Info
		events = append(events, e)
	}
	mem.count++
	m.mu.Unlock()
	return m.tell(events), nil
}

// Leave implements Store.
func (m *Memory) Leave(_ context.Context, s Socket, room string) ([]Event, error) {
	m.mu.Lock()
	rk := roomKey{s.Namespace, room}
	r := m.rooms[rk]
	if r == nil {
		m.mu.Unlock()
		return nil, nil
	}
	user, ok := r.sockets[s.ID]
	if !ok {
		m.mu.Unlock()
		return nil, nil
	}
	s.User = user
	delete(r.sockets, s.ID)
	var events []Event
	mem := r.members[user]
	if mem.count--; mem.count == 0 {
		delete(r.members, user)
		e := m.event(EventLeave, s, room, mem.gen, len(r.members))
		e.Info = mem.info
		events = append(events, e)
	}
	if len(r.members) == 0 {
		delete(m.rooms, rk)
		events = append(events, m.event(EventVacated, s, room, r.gen, 0))
	}
	m.mu.Unlock()
	return m.tell(events), nil
}

// Members implements Store.
func (m *Memory) Members(_ context.Context, nsp, room, cursor string, limit int) (Page, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[roomKey{nsp, room}]
	if r == nil {
		return Page{Members: []Member{}}, nil
	}
	p := Page{Users: len(r.members), Sockets: len(r.sockets), Members: []Member{}}
	if limit <= 0 {
		return p, nil
	}
	users := make([]string, 0, len(r.members))
	for u := range r.members {
		if u > cursor || cursor == "" {
			users = append(users, u)
		}
	}
	sort.Strings(users)
	if len(users) > limit {
		users = users[:limit]
		p.Next = users[limit-1]
	}
	for _, u := range users {
		mem := r.members[u]
		p.Members = append(p.Members, Member{User: u, Sockets: mem.count, Info: mem.info})
	}
	return p, nil
}

// Rooms implements Store.
func (m *Memory) Rooms(_ context.Context, nsp string) ([]RoomCount, error) {
	m.mu.Lock()
	out := []RoomCount{}
	for k, r := range m.rooms {
		if k.nsp == nsp {
			out = append(out, RoomCount{Name: k.room, Users: len(r.members), Sockets: len(r.sockets)})
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Throttle implements Store.
func (m *Memory) Throttle(_ context.Context, nsp, room string, interval time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	k := roomKey{nsp, room}
	if until, ok := m.ticks[k]; ok && now.Before(until) {
		return false, nil
	}
	for rk, until := range m.ticks { // keep the map to the rooms throttled now
		if !now.Before(until) {
			delete(m.ticks, rk)
		}
	}
	m.ticks[k] = now.Add(interval)
	return true, nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
