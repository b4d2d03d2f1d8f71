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
	rooms map[string]map[string]M // room -> member id -> member
}

type memberShard[M Member] struct {
	mu      sync.RWMutex
	members map[string]*entry[M] // member id -> entry
}

type entry[M Member] struct {
	m     M
	rooms map[string]struct{}
}

// New returns an empty Index.
func New[M Member]() *Index[M] {
	x := &Index[M]{seed: maphash.MakeSeed()}
	for i := range x.rooms {
		x.rooms[i].rooms = make(map[string]map[string]M)
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
		ms.members[m.ID()] = &entry[M]{m: m, rooms: make(map[string]struct{})}
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
		e = &entry[M]{m: m, rooms: make(map[string]struct{}, len(rooms))}
		ms.members[id] = e
	}
	for _, r := range rooms {
		if _, in := e.rooms[r]; !in {
			e.rooms[r] = struct{}{}
			added = append(added, r)
		}
	}
	ms.mu.Unlock()
	for _, r := range added {
		rs := &x.rooms[x.shard(r)]
		rs.mu.Lock()
		set := rs.rooms[r]
		if set == nil {
			set = make(map[string]M)
			rs.rooms[r] = set
			created = append(created, r)
		}
		set[id] = m
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
		_, ok = e.rooms[room]
		delete(e.rooms, room)
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
	set := rs.rooms[room]
	delete(set, id)
	if set != nil && len(set) == 0 {
		delete(rs.rooms, room)
		return true
	}
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
	for r := range e.rooms {
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
	out := make([]string, 0, len(e.rooms))
	for r := range e.rooms {
		out = append(out, r)
	}
	return out
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
	_, in := e.rooms[room]
	return in
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
	return len(rs.rooms[room])
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
			for id := range rs.rooms[r] {
				excluded[id] = struct{}{}
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
		for id, m := range rs.rooms[rooms[0]] {
			if _, skip := excluded[id]; skip {
				continue
			}
			fn(m)
			n++
		}
		rs.mu.RUnlock()
	default:
		seen := make(map[string]struct{})
		for _, r := range rooms {
			rs := &x.rooms[x.shard(r)]
			rs.mu.RLock()
			for id, m := range rs.rooms[r] {
				if _, skip := excluded[id]; skip {
					continue
				}
				if _, dup := seen[id]; dup {
					continue
				}
				seen[id] = struct{}{}
				fn(m)
				n++
			}
			rs.mu.RUnlock()
		}
	}
	return n
}
