package room

import (
	"hash/maphash"
	"sync"
)

const shardCount = 64

// Member is what an Index holds: a socket, identified by its id.
type Member interface {
	comparable
	ID() string
}

// Index maps rooms to members and members to rooms.
type Index[M Member] struct {
	seed    maphash.Seed
	rooms   [shardCount]roomShard[M]
	members [shardCount]memberShard[M]
}

type roomShard[M Member] struct {
	mu    sync.RWMutex
	rooms map[string]roomSet[M]
}

// roomSet is the members of one room. Most rooms of a gateway have one
// member (every socket's own room, most users' rooms): it is held inline,
// and a map is made for the second.
type roomSet[M Member] struct {
	one  M            // the only member, when many is nil
	many map[string]M // member id -> member, when there are two or more
}

func (s roomSet[M]) len() int {
	if s.many != nil {
		return len(s.many)
	}
	return 1
}

// add returns the set with m in it.
func (s roomSet[M]) add(id string, m M) roomSet[M] {
	if s.many != nil {
		s.many[id] = m
		return s
	}
	if s.one.ID() == id {
		s.one = m
		return s
	}
	s.many = map[string]M{s.one.ID(): s.one, id: m}
	var zero M
	s.one = zero
	return s
}

// del returns the set without member id, and false when it is empty.
func (s roomSet[M]) del(id string) (roomSet[M], bool) {
	if s.many == nil {
		if s.one.ID() == id {
			return roomSet[M]{}, false
		}
		return s, true
	}
	delete(s.many, id)
	if len(s.many) == 1 {
		for _, m := range s.many {
			return roomSet[M]{one: m}, true
		}
	}
	return s, len(s.many) > 0
}

// each calls fn for every member not in excluded.
func (s roomSet[M]) each(excluded map[string]struct{}, fn func(id string, m M)) {
	if s.many == nil {
		if _, skip := excluded[s.one.ID()]; !skip {
			fn(s.one.ID(), s.one)
		}
		return
	}
	for id, m := range s.many {
		if _, skip := excluded[id]; !skip {
			fn(id, m)
		}
	}
}

type memberShard[M Member] struct {
	mu      sync.RWMutex
	members map[string]*entry[M] // member id -> entry
}

// entry is one member and its rooms: a short list (a socket is in a few
// rooms), searched linearly.
type entry[M Member] struct {
	m     M
	rooms []string
}

func (e *entry[M]) in(room string) bool {
	for _, r := range e.rooms {
		if r == room {
			return true
		}
	}
	return false
}

func (e *entry[M]) drop(room string) bool {
	for i, r := range e.rooms {
		if r == room {
			last := len(e.rooms) - 1
			e.rooms[i] = e.rooms[last]
			e.rooms[last] = ""
			e.rooms = e.rooms[:last]
			return true
		}
	}
	return false
}

// New returns an empty Index.
func New[M Member]() *Index[M] {
	x := &Index[M]{seed: maphash.MakeSeed()}
	for i := range x.rooms {
		x.rooms[i].rooms = make(map[string]roomSet[M])
		x.members[i].members = make(map[string]*entry[M])
	}
	return x
}

func (x *Index[M]) shard(key string) uint64 {
	return maphash.String(x.seed, key) % shardCount
}

// Add registers m with no rooms; Join does it implicitly.
func (x *Index[M]) Add(m M) {
	ms := &x.members[x.shard(m.ID())]
	ms.mu.Lock()
	if _, ok := ms.members[m.ID()]; !ok {
		ms.members[m.ID()] = &entry[M]{m: m}
	}
	ms.mu.Unlock()
}

// Join adds m to rooms. It reports the rooms that had no member before (the
// first local member: a sharded adapter subscribes to their channels).
func (x *Index[M]) Join(m M, rooms ...string) (created []string) {
	id := m.ID()
	ms := &x.members[x.shard(id)]
	var added []string
	ms.mu.Lock()
	e, ok := ms.members[id]
	if !ok {
		e = &entry[M]{m: m, rooms: make([]string, 0, max(len(rooms), 2))}
		ms.members[id] = e
	}
	for _, r := range rooms {
		if !e.in(r) {
			e.rooms = append(e.rooms, r)
			added = append(added, r)
		}
	}
	ms.mu.Unlock()
	for _, r := range added {
		rs := &x.rooms[x.shard(r)]
		rs.mu.Lock()
		set, ok := rs.rooms[r]
		if !ok {
			rs.rooms[r] = roomSet[M]{one: m}
			created = append(created, r)
		} else {
			rs.rooms[r] = set.add(id, m)
		}
		rs.mu.Unlock()
	}
	return created
}

// Leave removes m from room. It reports whether the room became empty.
func (x *Index[M]) Leave(m M, room string) (emptied bool) {
	id := m.ID()
	ms := &x.members[x.shard(id)]
	ms.mu.Lock()
	e, ok := ms.members[id]
	if ok {
		ok = e.drop(room)
	}
	ms.mu.Unlock()
	if !ok {
		return false
	}
	return x.dropFromRoom(id, room)
}

func (x *Index[M]) dropFromRoom(id, room string) bool {
	rs := &x.rooms[x.shard(room)]
	rs.mu.Lock()
	defer rs.mu.Unlock()
	set, ok := rs.rooms[room]
	if !ok {
		return false
	}
	set, ok = set.del(id)
	if !ok {
		delete(rs.rooms, room)
		return true
	}
	rs.rooms[room] = set
	return false
}

// Remove drops m from every room and from the index. It returns the rooms
// that became empty.
func (x *Index[M]) Remove(m M) (emptied []string) {
	id := m.ID()
	ms := &x.members[x.shard(id)]
	ms.mu.Lock()
	e, ok := ms.members[id]
	delete(ms.members, id)
	ms.mu.Unlock()
	if !ok {
		return nil
	}
	for _, r := range e.rooms {
		if x.dropFromRoom(id, r) {
			emptied = append(emptied, r)
		}
	}
	return emptied
}

// Rooms returns the rooms m is in.
func (x *Index[M]) Rooms(id string) []string {
	ms := &x.members[x.shard(id)]
	ms.mu.RLock()
	defer ms.mu.RUnlock()
	e, ok := ms.members[id]
	if !ok {
		return nil
	}
	return append([]string(nil), e.rooms...)
}

// InRoom reports whether member id is in room.
func (x *Index[M]) InRoom(id, room string) bool {
	ms := &x.members[x.shard(id)]
	ms.mu.RLock()
	defer ms.mu.RUnlock()
	e, ok := ms.members[id]
	if !ok {
		return false
	}
	return e.in(room)
}

// Get returns the member with id.
func (x *Index[M]) Get(id string) (M, bool) {
	ms := &x.members[x.shard(id)]
	ms.mu.RLock()
	defer ms.mu.RUnlock()
	e, ok := ms.members[id]
	if !ok {
		var zero M
		return zero, false
	}
	return e.m, true
}

// Len returns the number of members.
func (x *Index[M]) Len() int {
	n := 0
	for i := range x.members {
		ms := &x.members[i]
		ms.mu.RLock()
		n += len(ms.members)
		ms.mu.RUnlock()
	}
	return n
}

// RoomLen returns the number of members of room.
func (x *Index[M]) RoomLen(room string) int {
	rs := &x.rooms[x.shard(room)]
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	set, ok := rs.rooms[room]
	if !ok {
		return 0
	}
	return set.len()
}

// AllRooms returns every room with at least one member.
func (x *Index[M]) AllRooms() []string {
	var out []string
	for i := range x.rooms {
		rs := &x.rooms[i]
		rs.mu.RLock()
		for r := range rs.rooms {
			out = append(out, r)
		}
		rs.mu.RUnlock()
	}
	return out
}

// Each calls fn once for every member selected by rooms and except: members
// of any of rooms (every member when rooms is empty) that are in none of
// except. It returns how many members fn was called for. fn runs under a
// shard read lock; see the package doc.
//
// A single room with no exceptions — the common broadcast — allocates nothing.
func (x *Index[M]) Each(rooms, except []string, fn func(M)) int {
	var excluded map[string]struct{}
	if len(except) > 0 {
		excluded = make(map[string]struct{})
		for _, r := range except {
			rs := &x.rooms[x.shard(r)]
			rs.mu.RLock()
			if set, ok := rs.rooms[r]; ok {
				set.each(nil, func(id string, _ M) { excluded[id] = struct{}{} })
			}
			rs.mu.RUnlock()
		}
	}
	n := 0
	switch len(rooms) {
	case 0:
		for i := range x.members {
			ms := &x.members[i]
			ms.mu.RLock()
			for id, e := range ms.members {
				if _, skip := excluded[id]; skip {
					continue
				}
				fn(e.m)
				n++
			}
			ms.mu.RUnlock()
		}
	case 1:
		rs := &x.rooms[x.shard(rooms[0])]
		rs.mu.RLock()
		if set, ok := rs.rooms[rooms[0]]; ok {
			if set.many == nil {
				if _, skip := excluded[set.one.ID()]; !skip {
					fn(set.one)
					n++
				}
			} else {
				for id, m := range set.many {
					if _, skip := excluded[id]; skip {
						continue
					}
					fn(m)
					n++
				}
			}
		}
		rs.mu.RUnlock()
	default:
		seen := make(map[string]struct{})
		for _, r := range rooms {
			rs := &x.rooms[x.shard(r)]
			rs.mu.RLock()
			if set, ok := rs.rooms[r]; ok {
				set.each(excluded, func(id string, m M) {
					if _, dup := seen[id]; dup {
						return
					}
					seen[id] = struct{}{}
					fn(m)
					n++
				})
			}
			rs.mu.RUnlock()
		}
	}
	return n
}
