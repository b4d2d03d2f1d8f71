// socket.io reference peer for the side-by-side benchmarks.
//
// A plain socket.io 4.8 server implementing the same client contract as the
// Roomcast gateway (gateway/events.go), so loadtest/cmd/loadgen and
// loadtest/socketio.js drive both unchanged:
//
//   - CONNECT carries auth {token: <JWT HS256 {sub, join, publish, exp}>},
//     checked with node:crypto (HMAC-SHA256, constant-time compare, exp/nbf);
//     a refusal is a CONNECT_ERROR with a message. Every socket joins
//     "user:<sub>" as the gateway does.
//   - "join" (room name or {room}) + ack -> {ok:true} or {error:{code,message}}
//   - "leave" (room name or {room}) + ack -> {ok:true}
//   - "publish" {room|rooms, event, data} + ack -> every OTHER socket of the
//     rooms receives event with (data, {room, user}); ack {ok:true}
//
// Environment:
//   PORT          listen port on 127.0.0.1 (default 3000; 0 picks one)
//   HOST          listen address (default 127.0.0.1)
//   JWT_SECRET    HS256 secret (required)
//   REDIS_URL     when set, @socket.io/redis-adapter over this Redis
//   REDIS_PREFIX  the adapter's key (default "socket.io")
//
// It prints one line "listening <port>" once ready, and exits 0 on SIGTERM or
// SIGINT after closing the server and the Redis clients.

import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import { Server } from "socket.io";

const HOST = process.env.HOST || "127.0.0.1";
const PORT = Number(process.env.PORT ?? 3000);
const SECRET = process.env.JWT_SECRET || "";
const REDIS_URL = process.env.REDIS_URL || "";
const REDIS_PREFIX = process.env.REDIS_PREFIX || "socket.io";

if (!SECRET) {
  console.error("peer: JWT_SECRET is required");
  process.exit(2);
}

const USER_ROOM_PREFIX = "user:";
const MAX_ROOM_LEN = 256;

// --- JWT (HS256 only) -------------------------------------------------------

function b64urlDecode(s) {
  return Buffer.from(s, "base64url");
}

const secretKey = Buffer.from(SECRET);

// verifyToken returns the claims of a valid token or throws an Error whose
// message the client sees in its CONNECT_ERROR.
function verifyToken(token, now = Date.now() / 1000) {
  if (typeof token !== "string") throw new Error("auth: token required");
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("auth: malformed token");
  let header;
  try {
    header = JSON.parse(b64urlDecode(parts[0]).toString("utf8"));
  } catch {
    throw new Error("auth: malformed token header");
  }
  if (!header || header.alg !== "HS256") throw new Error("auth: algorithm not accepted");
  const want = createHmac("sha256", secretKey).update(parts[0] + "." + parts[1]).digest();
  const got = b64urlDecode(parts[2]);
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new Error("auth: bad signature");
  }
  let claims;
  try {
    claims = JSON.parse(b64urlDecode(parts[1]).toString("utf8"));
  } catch {
    throw new Error("auth: malformed token payload");
  }
  if (!claims || typeof claims !== "object") throw new Error("auth: malformed token payload");
  if (typeof claims.sub !== "string" || claims.sub === "") throw new Error("auth: token has no sub");
  if (claims.exp !== undefined && !(typeof claims.exp === "number" && now < claims.exp)) {
    throw new Error("auth: token expired");
  }
  if (claims.nbf !== undefined && !(typeof claims.nbf === "number" && now >= claims.nbf)) {
    throw new Error("auth: token not valid yet");
  }
  return {
    sub: claims.sub,
    join: patterns(claims.join),
    publish: patterns(claims.publish),
  };
}

function patterns(v) {
  if (typeof v === "string") return [globToRegExp(v)];
  if (Array.isArray(v)) return v.filter((p) => typeof p === "string").map(globToRegExp);
  return [];
}

// '*' matches any run of characters, '?' one character; the rest is literal.
function globToRegExp(p) {
  if (p === "*") return /^[\s\S]*$/u;
  let re = "^";
  for (const ch of p) {
    if (ch === "*") re += "[\\s\\S]*";
    else if (ch === "?") re += "[\\s\\S]";
    else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(re + "$", "u");
}

function allowed(list, room) {
  for (const re of list) if (re.test(room)) return true;
  return false;
}

// --- server ------------------------------------------------------------------

const httpServer = createServer();
const io = new Server(httpServer, {
  serveClient: false,
  cors: { origin: true },
});

let redisClients = [];
if (REDIS_URL) {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pub = createClient({ url: REDIS_URL });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on("error", (err) => console.error("peer: redis:", err.message));
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub, { key: REDIS_PREFIX }));
  redisClients = [pub, sub];
}

function errorAck(code, message) {
  return { error: { code, message } };
}

function reply(ack, v) {
  if (typeof ack === "function") ack(v);
}

function roomArg(arg) {
  const room = typeof arg === "string" ? arg : arg && typeof arg === "object" ? arg.room : undefined;
  return typeof room === "string" && room.length > 0 && room.length <= MAX_ROOM_LEN ? room : null;
}

io.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  try {
    socket.data.claims = verifyToken(token);
    socket.data.user = socket.data.claims.sub;
  } catch (err) {
    next(err);
    return;
  }
  next();
});

io.on("connection", (socket) => {
  const claims = socket.data.claims;
  socket.join(USER_ROOM_PREFIX + claims.sub);

  socket.on("join", (arg, ack) => {
    const room = roomArg(arg);
    if (room === null) return reply(ack, errorAck("bad_request", "join expects a room name (1 to 256 bytes)"));
    if (room.startsWith(USER_ROOM_PREFIX) || !allowed(claims.join, room)) {
      return reply(ack, errorAck("forbidden", `not allowed to join "${room.slice(0, 64)}"`));
    }
    socket.join(room);
    reply(ack, { ok: true });
  });

  socket.on("leave", (arg, ack) => {
    const room = roomArg(arg);
    if (room === null) return reply(ack, errorAck("bad_request", "leave expects a room name"));
    if (room.startsWith(USER_ROOM_PREFIX)) {
      return reply(ack, errorAck("forbidden", `not allowed to leave "${room.slice(0, 64)}"`));
    }
    socket.leave(room);
    reply(ack, { ok: true });
  });

  socket.on("publish", (p, ack) => {
    if (!p || typeof p !== "object") {
      return reply(ack, errorAck("bad_request", "publish expects an object {room|rooms, event, data}"));
    }
    const rooms = [];
    if (typeof p.room === "string") rooms.push(p.room);
    if (Array.isArray(p.rooms)) rooms.push(...p.rooms);
    if (rooms.length === 0) return reply(ack, errorAck("bad_request", "publish needs room or rooms"));
    if (rooms.length > 64) return reply(ack, errorAck("bad_request", "at most 64 rooms per publish"));
    for (const r of rooms) {
      if (typeof r !== "string" || r.length === 0 || r.length > MAX_ROOM_LEN) {
        return reply(ack, errorAck("bad_request", "room names are 1 to 256 bytes"));
      }
      if (r.startsWith(USER_ROOM_PREFIX) || !allowed(claims.publish, r)) {
        return reply(ack, errorAck("forbidden", `not allowed to publish to "${r.slice(0, 64)}"`));
      }
    }
    if (typeof p.event !== "string" || p.event.length === 0 || p.event.length > 128) {
      return reply(ack, errorAck("bad_request", "publish needs an event name (1 to 128 bytes)"));
    }
    try {
      for (const r of rooms) {
        socket.to(r).emit(p.event, p.data, { room: r, user: claims.sub });
      }
    } catch (err) {
      return reply(ack, errorAck("bad_request", err.message)); // a reserved event name
    }
    reply(ack, { ok: true });
  });

  socket.onAny((event, ...args) => {
    if (event === "join" || event === "leave" || event === "publish") return;
    const ack = args[args.length - 1];
    reply(ack, errorAck("unknown_event", `event "${String(event).slice(0, 64)}" is not handled by this server`));
  });
});

httpServer.listen(PORT, HOST, () => {
  console.log(`listening ${httpServer.address().port}`);
});

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  const force = setTimeout(() => process.exit(0), 3000);
  force.unref();
  io.close();
  for (const c of redisClients) {
    try {
      await c.quit();
    } catch {
      // already gone
    }
  }
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
