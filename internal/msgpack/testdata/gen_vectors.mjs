// Regenerates vectors.json: values encoded by notepack.io (the MessagePack
// encoder of @socket.io/redis-adapter and @socket.io/redis-emitter), plus
// messages shaped exactly as those packages publish them (built the way their
// dist/*.js build them), used to seed the decoders' fuzz targets.
//
//   node internal/msgpack/testdata/gen_vectors.mjs > internal/msgpack/testdata/vectors.json
//
// Run from the repository root after `npm ci`.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const notepack = require("notepack.io");

// Tagged JSON form of a value, for the Go test to compare against:
// Buffers become {"$bin":"<hex>"}, Dates {"$date":"<ISO>"}, undefined null.
function tag(v) {
  if (v === undefined || v === null) return null;
  if (Buffer.isBuffer(v)) return { $bin: v.toString("hex") };
  if (v instanceof Date) return { $date: v.toISOString() };
  if (Array.isArray(v)) return v.map(tag);
  if (typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v)) if (v[k] !== undefined) out[k] = tag(v[k]);
    return out;
  }
  return v;
}

const values = [];
const add = (name, value, canonical = true) =>
  values.push({ name, hex: notepack.encode(value).toString("hex"), value: tag(value), canonical });

add("nil", null);
add("false", false);
add("true", true);
for (const n of [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
  -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53 - 1)]) {
  add(`int ${n}`, n);
}
// Not 1e300: notepack.io mangles integral numbers of 2^64 and more (it shifts
// them as 32-bit integers); the Go encoder writes them as float 64.
for (const f of [1.5, -0.25, 0.1, 6.02e-23, -1e-300, 3.141592653589793]) add(`float ${f}`, f);
add("empty string", "");
add("fixstr 31", "a".repeat(31));
add("str8 32", "b".repeat(32));
add("str8 255", "c".repeat(255));
add("str16 256", "d".repeat(256));
add("unicode", "héllo 日本 🎉");
add("bin 0", Buffer.alloc(0));
add("bin 3", Buffer.from([1, 2, 3]));
add("bin8 255", Buffer.alloc(255, 7));
add("bin16 256", Buffer.alloc(256, 8));
// The 32-bit length forms are checked by hand in the Go tests (vectors that
// size would bloat this file).
add("array 0", []);
add("fixarray 15", Array.from({ length: 15 }, (_, i) => i));
add("array16 16", Array.from({ length: 16 }, (_, i) => i));
add("map 0", {});
const keys = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${String(i).padStart(2, "0")}`, i]));
add("fixmap 15", keys(15));
add("map16 16", keys(16));
add("nested", { a: [1, { b: [true, null, "x"] }], c: { d: Buffer.from("yz") } });
add("date 32", new Date(Date.UTC(2024, 0, 2, 3, 4, 5)));
add("date 64", new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)));
add("date 96", new Date(-1000));

// Messages as @socket.io/redis-adapter 8.3 (lib/index.ts), its sharded
// adapter (socket.io-adapter ClusterAdapter) and @socket.io/redis-emitter 5
// publish them. Object keys follow the insertion order those packages use.
const messages = [];
const msg = (name, kind, value) => messages.push({ name, kind, hex: notepack.encode(value).toString("hex") });
const json = (name, kind, value) => messages.push({ name, kind, hex: Buffer.from(JSON.stringify(value)).toString("hex") });

const pkt = (data, nsp = "/") => {
  const p = { type: 2, data };
  p.nsp = nsp;
  return p;
};
const flagsOpts = (rooms, except, flags) => ({ rooms, except, flags });
msg("classic broadcast to everyone", "classic", ["Xy12ab", pkt(["chat", "hello", { n: 1, f: 1.5 }]), flagsOpts([], [], {})]);
msg("classic broadcast to one room", "classic", ["Xy12ab", pkt(["news", "x"]), flagsOpts(["room1"], [], {})]);
msg("classic broadcast, rooms and except", "classic", ["Xy12ab", pkt(["news", 42, null, true]), flagsOpts(["a", "b"], ["c"], { volatile: true, compress: true })]);
msg("classic broadcast with binary", "classic", ["Xy12ab", pkt(["file", Buffer.from([1, 2, 3]), { nested: [Buffer.from("abc")] }], "/chat"), flagsOpts([], [], {})]);
msg("classic broadcast without flags", "classic", ["Xy12ab", pkt(["e"]), { rooms: [], except: [] }]);
msg("emitter broadcast", "classic", ["emitter", pkt(["from emitter", { a: [1, 2] }]), { rooms: ["r"], flags: {}, except: [] }]);
msg("emitter volatile binary", "classic", ["emitter", pkt(["bin", Buffer.alloc(300, 1)], "/admin"), { rooms: [], flags: { volatile: true }, except: ["x"] }]);
msg("classic BROADCAST request", "request", {
  uid: "Xy12ab", requestId: "Rq34cd", type: 7, packet: pkt(["ask", 1]), opts: flagsOpts(["room1"], [], { timeout: 1000 }),
});
msg("classic BROADCAST request with binary", "request", {
  uid: "Xy12ab", requestId: "Rq34ce", type: 7, packet: pkt(["ask", Buffer.from("bytes")]), opts: flagsOpts([], [], { timeout: 500 }),
});
msg("classic BROADCAST_ACK response", "response", { type: 9, requestId: "Rq34cd", packet: "ok" });
msg("classic BROADCAST_ACK response with binary", "response", { type: 9, requestId: "Rq34cd", packet: { buf: Buffer.from([9, 9]) } });
json("classic BROADCAST_CLIENT_COUNT response", "response", { type: 8, requestId: "Rq34cd", clientCount: 3 });
json("classic REMOTE_JOIN request", "request", { uid: "Xy12ab", type: 2, opts: { rooms: ["a"], except: [] }, rooms: ["b", "c"] });
json("classic REMOTE_LEAVE request", "request", { uid: "Xy12ab", type: 3, opts: { rooms: [], except: ["x"] }, rooms: ["b"] });
json("classic REMOTE_DISCONNECT request", "request", { uid: "Xy12ab", type: 4, opts: { rooms: ["a"], except: [] }, close: true });
json("classic REMOTE_FETCH request", "request", { uid: "Xy12ab", requestId: "Rq1", type: 5, opts: { rooms: ["a"], except: [] } });
json("classic SERVER_SIDE_EMIT request", "request", { uid: "Xy12ab", type: 6, data: ["hello", "world", 1] });
json("classic SERVER_SIDE_EMIT request with ack", "request", { uid: "Xy12ab", requestId: "Rq2", type: 6, data: ["ping"] });
json("classic SOCKETS request", "request", { uid: "Xy12ab", requestId: "Rq3", type: 0, rooms: ["a"] });
json("classic ALL_ROOMS request", "request", { uid: "Xy12ab", requestId: "Rq4", type: 1 });
json("emitter REMOTE_JOIN request", "request", { type: 2, opts: { rooms: ["a"], except: [] }, rooms: ["b"] });
json("classic REMOTE_FETCH response", "response", {
  requestId: "Rq1",
  sockets: [{
    id: "AbCdEfGhIjKlMnOpQrSt",
    handshake: {
      headers: { host: "localhost", "set-cookie": ["a=1", "b=2"] }, time: "Mon, 01 Jan 2024 00:00:00 GMT", address: "::1",
      xdomain: false, secure: false, issued: 1704067200000, url: "/socket.io/?EIO=4&transport=websocket",
      query: { EIO: "4", transport: "websocket", t: ["1", "2"] }, auth: { token: "x" },
    },
    rooms: ["AbCdEfGhIjKlMnOpQrSt", "room1"],
    data: { user: "alice", n: 3 },
  }],
});
json("classic SERVER_SIDE_EMIT response", "response", { type: 6, requestId: "Rq2", data: "pong" });

const cluster = (type, data, nsp = "/") => ({ uid: "0123456789abcdef", nsp, type, data });
json("sharded BROADCAST", "sharded", cluster(3, { packet: pkt(["chat", "hi"]), opts: flagsOpts(["room1"], [], {}) }));
msg("sharded BROADCAST with binary", "sharded", cluster(3, { packet: pkt(["chat", Buffer.from([0, 255])]), opts: flagsOpts([], ["x"], { volatile: true }) }));
json("sharded BROADCAST with ack", "sharded", cluster(3, { packet: pkt(["ask"]), requestId: "fedcba9876543210", opts: flagsOpts([], [], { timeout: 1000 }) }));
json("sharded SOCKETS_JOIN", "sharded", cluster(4, { opts: flagsOpts(["a"], [], {}), rooms: ["b"] }));
json("sharded SOCKETS_LEAVE", "sharded", cluster(5, { opts: flagsOpts(["a"], [], {}), rooms: ["b"] }));
json("sharded DISCONNECT_SOCKETS", "sharded", cluster(6, { opts: flagsOpts(["a"], [], {}), close: false }));
json("sharded FETCH_SOCKETS", "sharded", cluster(7, { opts: flagsOpts([], [], {}), requestId: "r1" }));
json("sharded FETCH_SOCKETS_RESPONSE", "sharded", cluster(8, { requestId: "r1", sockets: [{ id: "s1", handshake: { headers: {}, query: {}, auth: {} }, rooms: ["s1"], data: null }] }));
json("sharded SERVER_SIDE_EMIT", "sharded", cluster(9, { packet: ["hello", 1] }));
json("sharded SERVER_SIDE_EMIT with ack", "sharded", cluster(9, { requestId: "r2", packet: ["ping"] }));
json("sharded SERVER_SIDE_EMIT_RESPONSE", "sharded", cluster(10, { requestId: "r2", packet: "pong" }));
json("sharded BROADCAST_CLIENT_COUNT", "sharded", cluster(11, { requestId: "r3", clientCount: 2 }));
msg("sharded BROADCAST_ACK with binary", "sharded", cluster(12, { requestId: "r3", packet: Buffer.from("ack") }));

process.stdout.write(JSON.stringify({
  generator: "internal/msgpack/testdata/gen_vectors.mjs",
  notepack: require("notepack.io/package.json").version,
  values,
  messages,
}, null, 1) + "\n");
