package redisadapter

import "github.com/roomcast/roomcast/adapter"

// RoomChannel returns the shard channel of room in the sharded namespace
// adapter a (ok false for a room without one), for the tests.
func RoomChannel(a adapter.Adapter, room string) (channel string, ok bool) {
	return a.(*namespaceAdapter).proto.(*sharded).roomChannel(room)
}
