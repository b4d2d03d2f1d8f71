// Package msgpack is the MessagePack codec of the Redis adapters, matching
// notepack.io 3.x, the encoder @socket.io/redis-adapter and
// @socket.io/redis-emitter use.
//
// [Decode] turns one MessagePack value into generic Go values: nil, bool,
// int64, uint64 (only above math.MaxInt64), float64, string, []byte,
// time.Time (timestamp extensions), []any and map[string]any. Map keys that
// are not strings become the string JavaScript would make of them, since
// notepack decodes maps into JavaScript objects. The extensions notepack
// gives a meaning to are decoded as it does (type 0 as binary, the fixext 1
// of type 0 as undefined, i.e. nil, timestamps as time.Time); any other
// extension is []any{int64(type), []byte(data)}, notepack's [type, Buffer].
//
// [Append] and [Marshal] encode as notepack does: integers (and integral
// floats) in the smallest integer form, other numbers as float 64, strings
// as str, []byte as bin, maps with their keys sorted (notepack keeps the
// insertion order of a JavaScript object; Go maps have none). json.Number is
// encoded as the number it holds.
//
// # Concurrency
//
// Every function is pure and safe for concurrent use. Values returned by
// Decode alias b where they are []byte; the caller must not modify b while
// using them.
package msgpack
