// The trust boundary (docs/SECURITY.md), attacked through the real binary.
//
// Each describe block reproduces one finding of the review that opened the
// "safe on the open internet" issue, as an attacker or a careless backend
// would, and asserts that the mechanism closing it holds: durable quotas,
// rate limits that follow the identity, token lifetime, rights re-checked on
// recovery, API selectors, HTTP timeouts, write deadlines, reserved names.
// Raw Engine.IO/Socket.IO frames are used where the official client would not
// misbehave the way an attacker does.
import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import { io } from "socket.io-client";
import WebSocket from "ws";
import {
  TIMEOUT, connected, nextEvent, now, record, request, signJWT, startGateway, startRedis, unique, until, useGateway,
} from "./gateway.mjs";

const SECRET = unique("sec-secret");
const API_TOKEN = unique("sec-api");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ws = (token) => ({ transports: ["websocket"], auth: { token } });
const errCode = (ack) => ack && ack.error && ack.error.code;

// --- a raw Engine.IO v4 websocket client ----------------------------------------

/**
 * A websocket speaking Engine.IO/Socket.IO frames by hand. It answers pings
 * unless `stall` is set, and keeps every text frame it receives.
 */
class Raw {
  static async open(gw, { query = "", stall = false } = {}) {
    const r = new Raw();
    r.frames = [];
    r.waiters = [];
    r.closed = false;
    r.sock = new WebSocket(`ws://127.0.0.1:${gw.port}/socket.io/?EIO=4&transport=websocket${query}`);
    r.sock.on("message", (data, isBinary) => {
      if (isBinary) return;
      const s = data.toString();
      if (s === "2" && !stall) r.sock.send("3");
      r.frames.push(s);
      for (const w of [...r.waiters]) w();
    });
    r.closedPromise = new Promise((resolve) => r.sock.on("close", () => {
      r.closed = true;
      for (const w of [...r.waiters]) w();
      resolve();
    }));
    r.sock.on("error", () => {});
    await new Promise((resolve, reject) => {
      r.sock.once("open", resolve);
      r.sock.once("error", reject);
    });
    await r.wait((f) => f.startsWith("0{"));
    return r;
  }

  send(s) {
    if (!this.closed) this.sock.send(s);
  }

  /** Resolves with (and removes) the first frame matching pred. */
  wait(pred, timeout = TIMEOUT) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.frames.findIndex(pred);
        if (i >= 0) {
          done();
          resolve(this.frames.splice(i, 1)[0]);
        } else if (this.closed) {
          done();
          reject(new Error("connection closed"));
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching frame within ${timeout} ms (have ${JSON.stringify(this.frames.slice(-5))})`));
      }, timeout);
      this.waiters.push(check);
      check();
    });
  }

  close() {
    this.sock.terminate();
  }
}

/** CONNECT to "/" with auth; resolves with the CONNECT reply or CONNECT_ERROR frame. */
async function rawConnect(r, auth) {
  r.send("40" + JSON.stringify(auth));
  return r.wait((f) => f.startsWith("40") || f.startsWith("44"));
}

// --- 1. durable storage has a byte budget -------------------------------------------

describe("durable quotas", () => {
  describe("anonymous clients", () => {
    const ctx = useGateway({ args: ["--allow-anonymous"] });
    test("cannot store direct messages to made-up users", async () => {
      const s = await ctx.connect({ transports: ["websocket"] });
      for (let i = 0; i < 3; i++) {
        const ack = await request(s, "publish", { user: unique("victim"), event: "dm", data: "x".repeat(1000) });
        assert.equal(errCode(ack), "forbidden", JSON.stringify(ack));
      }
    });
  });

  describe("signed-in clients", () => {
    const ctx = useGateway({
      args: ["--jwt-secret", SECRET, "--api-token", API_TOKEN,
        "--queue-max-bytes", "100000", "--max-durable-message", "40000", "--durable-budget", "150000"],
    });
    test("a publish claim on user rooms is not a dm right", async () => {
      const s = await ctx.connect(ws(signJWT({ sub: unique("u"), publish: ["user:*", "*"] }, SECRET)));
      const ack = await request(s, "publish", { user: unique("victim"), event: "dm", data: 1 });
      assert.equal(errCode(ack), "forbidden", JSON.stringify(ack));
    });
    test("dm patterns name whom a user may message", async () => {
      const s = await ctx.connect(ws(signJWT({ sub: unique("u"), dm: ["friend-*"] }, SECRET)));
      assert.equal((await request(s, "publish", { user: unique("friend"), event: "dm", data: 1 })).ok, true);
      assert.equal(errCode(await request(s, "publish", { user: unique("stranger"), event: "dm", data: 1 })), "forbidden");
    });
    test("a message over the largest durable message is refused, by clients and the API", async () => {
      const s = await ctx.connect(ws(signJWT({ sub: unique("u"), dm: ["*"] }, SECRET)));
      const ack = await request(s, "publish", { user: unique("big"), event: "dm", data: "x".repeat(50000) });
      assert.equal(errCode(ack), "too_large", JSON.stringify(ack));
      const res = await ctx.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { event: "dm", users: [unique("big")], args: ["x".repeat(50000)] } });
      assert.equal(res.status, 413, res.text);
    });
    test("a full user queue refuses instead of trimming", async () => {
      const target = unique("full");
      const got = [];
      const s = await ctx.connect(ws(signJWT({ sub: target }, SECRET)));
      s.on("dm", (i) => got.push(i));
      const body = (i) => ({ event: "dm", users: [target], args: [i, "x".repeat(30000)] });
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await ctx.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: body(i) })).status);
      assert.deepEqual(statuses.slice(0, 3), [200, 200, 200], JSON.stringify(statuses));
      assert.equal(statuses[3], 429, JSON.stringify(statuses));
      // The target gets the three stored messages, and not the refused one.
      await until(() => got.length >= 3, "three stored messages");
      await sleep(200);
      assert.deepEqual(got, [0, 1, 2]);
    });
    test("the per-sender budget holds across reconnects", async () => {
      const token = signJWT({ sub: unique("spammer"), dm: ["*"] }, SECRET);
      let accepted = 0;
      let refused = null;
      for (let round = 0; round < 3 && !refused; round++) {
        const s = await ctx.connect(ws(token));
        for (let i = 0; i < 4; i++) {
          const ack = await request(s, "publish", { user: unique("r"), event: "dm", data: "x".repeat(30000) });
          if (ack.ok) accepted++;
          else {
            refused = ack;
            break;
          }
        }
        s.disconnect();
      }
      assert.equal(errCode(refused), "quota_exceeded", JSON.stringify(refused));
      assert.ok(accepted * 30000 <= 150000, `accepted ${accepted} × 30 KB against a 150 KB budget`);
    });
  });
});

// --- 2. rate limits follow the identity ---------------------------------------------

describe("rate limits", () => {
  const ctx = useGateway({ args: ["--jwt-secret", SECRET, "--event-rate", "20", "--connect-rate", "5"] });

  test("reconnecting on the same websocket does not refill the event budget", async () => {
    const token = signJWT({ sub: unique("flood") }, SECRET);
    const r = await Raw.open(ctx.gw);
    const start = Date.now();
    let accepted = 0;
    let id = 0;
    for (let round = 0; round < 5; round++) {
      const reply = await rawConnect(r, { token });
      assert.ok(reply.startsWith("40{"), reply);
      const ids = [];
      for (let i = 0; i < 60; i++) {
        ids.push(++id);
        r.send(`42${id}["nope"]`);
      }
      for (const n of ids) {
        const ack = await r.wait((f) => f.startsWith(`43${n}[`));
        if (!ack.includes("rate_limited")) accepted++;
      }
      r.send("41");
    }
    const secs = (Date.now() - start) / 1000;
    r.close();
    // burst (2 × rate) plus what the rate refills over the run, plus slack
    const bound = 40 + 20 * secs + 5;
    assert.ok(accepted <= bound, `${accepted} events accepted in ${secs.toFixed(2)} s, bound ${bound.toFixed(0)}`);
  });

  test("failed CONNECTs are limited and the connection is closed", async () => {
    const r = await Raw.open(ctx.gw);
    let answered = 0;
    for (let i = 0; i < 200 && !r.closed; i++) {
      r.send('40{"token":"not-a-token"}');
      try {
        const f = await r.wait((x) => x.startsWith("44"), 2000);
        if (/rate limited/.test(f)) break;
        answered++;
      } catch {
        break;
      }
    }
    await Promise.race([r.closedPromise, sleep(3000)]);
    assert.ok(answered < 30, `${answered} bad-token CONNECTs answered`);
    assert.ok(r.closed, "the connection stayed open after the CONNECT limit");
  });
});

describe("connection caps", () => {
  const ctx = useGateway({ args: ["--jwt-secret", SECRET, "--max-conns-per-user", "2"] });
  test("a user's third socket is refused", async () => {
    const token = signJWT({ sub: unique("capped") }, SECRET);
    await ctx.connect(ws(token));
    await ctx.connect(ws(token));
    const err = await ctx.connectError(ws(token));
    assert.match(err.message, /too many connections/);
  });
});

// --- 3. token lifetime ------------------------------------------------------------------

describe("token lifetime", () => {
  const ctx = useGateway({ args: ["--jwt-secret", SECRET, "--token-expiry-warning", "1s"] });

  test("a socket is warned, then its transport closed at exp", async () => {
    const s = await ctx.connect(ws(signJWT({ sub: unique("short"), join: ["*"], exp: now() + 3 }, SECRET)));
    const warned = nextEvent(s, "roomcast:token-expiring", 4000);
    const gone = nextEvent(s, "disconnect", 6000);
    const [w] = await warned;
    assert.ok(w && typeof w.exp === "number", JSON.stringify(w));
    const [reason] = await gone;
    assert.equal(reason, "transport close");
  });

  test("a fresh token sent with the auth event keeps the socket", async () => {
    const user = unique("refresh");
    const s = await ctx.connect(ws(signJWT({ sub: user, join: ["*"], exp: now() + 3 }, SECRET)));
    await nextEvent(s, "roomcast:token-expiring", 4000);
    const ack = await request(s, "auth", { token: signJWT({ sub: user, join: ["*"] }, SECRET) });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    await sleep(2500);
    assert.equal(s.connected, true, "refreshed socket was closed");
    assert.equal((await request(s, "join", unique("room"))).ok, true);
  });

  test("the auth event refuses another user's token", async () => {
    const s = await ctx.connect(ws(signJWT({ sub: unique("me") }, SECRET)));
    const ack = await request(s, "auth", { token: signJWT({ sub: unique("someone-else") }, SECRET) });
    assert.equal(errCode(ack), "forbidden", JSON.stringify(ack));
  });
});

// --- 4. rights re-checked on recovery --------------------------------------------------

describe("rights follow the token", () => {
  const ctx = useGateway({ args: ["--jwt-secret", SECRET, "--api-token", API_TOKEN, "--durable-rooms", "team:*"] });

  test("recovering with a token that no longer allows a room drops it and says so", async () => {
    const user = unique("demoted");
    const room = unique("room");
    const s = io(ctx.gw.url, {
      forceNew: true, transports: ["websocket"], reconnectionDelay: 50, reconnectionDelayMax: 100,
      auth: { token: signJWT({ sub: user, join: ["room-*"] }, SECRET) },
    });
    ctx.clients.add(s);
    await connected(s);
    assert.equal((await request(s, "join", room)).ok, true);
    const dropped = nextEvent(s, "roomcast:rooms-dropped", 5000);
    s.auth = { token: signJWT({ sub: user, join: ["other-*"] }, SECRET) };
    const back = nextEvent(s, "connect", 5000);
    s.io.engine.close();
    await back;
    assert.equal(s.recovered, true);
    const [info] = await dropped;
    assert.deepEqual(info.rooms, [room]);
    const got = record(s, "news");
    const res = await ctx.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { event: "news", rooms: [room], args: [1] } });
    assert.equal(res.status, 200, res.text);
    await sleep(300);
    assert.deepEqual(got.events, [], "a room the token no longer allows still delivers");
  });

  test("a durable-room member whose token no longer allows the room stops receiving it", async () => {
    const user = unique("ex-member");
    const team = unique("team:");
    const a = await ctx.connect(ws(signJWT({ sub: user, join: ["team:*"] }, SECRET)));
    assert.equal((await request(a, "join", team)).ok, true);
    a.disconnect();
    const b = await ctx.connect(ws(signJWT({ sub: user, join: ["other-*"] }, SECRET)));
    const got = record(b, "news");
    const res = await ctx.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { event: "news", rooms: [team], args: [1] } });
    assert.equal(res.status, 200, res.text);
    await sleep(300);
    assert.deepEqual(got.events, [], "a revoked durable room still delivers");
  });
});

// --- 5. API selectors -------------------------------------------------------------------

describe("API selectors", () => {
  const ctx = useGateway({ args: ["--jwt-secret", SECRET, "--api-token", API_TOKEN] });
  const emit = (body) => ctx.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body });

  for (const [name, body] of [
    ["no selector", { event: "news", args: [1] }],
    ["empty users", { event: "news", users: [], args: [1] }],
    ["empty rooms", { event: "news", rooms: [], args: [1] }],
    ["all lists empty", { event: "news", rooms: [], users: [], sockets: [], args: [1] }],
  ]) {
    test(`${name} is a 400, not a broadcast to everyone`, async () => {
      const s = await ctx.connect(ws(signJWT({ sub: unique("bystander") }, SECRET)));
      const got = record(s, "news");
      const res = await emit(body);
      assert.equal(res.status, 400, res.text);
      await sleep(200);
      assert.deepEqual(got.events, []);
    });
  }

  test("broadcast: true reaches everyone", async () => {
    const s = await ctx.connect(ws(signJWT({ sub: unique("everyone") }, SECRET)));
    const got = nextEvent(s, "news");
    const res = await emit({ event: "news", broadcast: true, args: [7] });
    assert.equal(res.status, 200, res.text);
    assert.equal((await got)[0], 7);
  });

  test("bad user ids are a 400", async () => {
    for (const users of [[""], ["x".repeat(300)], ["a\u0000b"]]) {
      const res = await emit({ event: "news", users, args: [1] });
      assert.equal(res.status, 400, `${JSON.stringify(users)}: ${res.status} ${res.text}`);
    }
  });

  test("reserved event names cannot be emitted", async () => {
    for (const event of ["roomcast:not-recovered", "roomcast:anything", "connect", "disconnect"]) {
      const res = await emit({ event, broadcast: true, args: [1] });
      assert.equal(res.status, 400, `${event}: ${res.status} ${res.text}`);
    }
  });
});

// --- 6. idle and trickling HTTP connections ------------------------------------------

/** Resolves true once the server closes sock, false after ms. */
const closedWithin = (sock, ms) => new Promise((resolve) => {
  if (sock.destroyed) return resolve(true);
  const timer = setTimeout(() => resolve(false), ms);
  sock.once("close", () => {
    clearTimeout(timer);
    resolve(true);
  });
});

describe("HTTP timeouts", () => {
  const ctx = useGateway({ args: ["--jwt-secret", SECRET, "--http-idle-timeout", "1s", "--http-read-timeout", "2s"] });

  for (const which of ["client", "admin"]) {
    test(`an idle keep-alive connection on the ${which} port is closed`, async () => {
      const port = which === "client" ? ctx.gw.port : ctx.gw.adminPort;
      const path = which === "client" ? "/socket.io/?EIO=4&transport=polling" : "/healthz";
      const sock = net.connect(port, "127.0.0.1");
      sock.on("error", () => {});
      let got = "";
      sock.on("data", (d) => (got += d));
      sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n`);
      await until(() => got.includes("\r\n\r\n"), "a response");
      assert.ok(await closedWithin(sock, 4000), "idle keep-alive connection still open after 4 s");
    });
  }

  test("a polling POST body trickled a byte at a time is cut off", async () => {
    const res = await fetch(`${ctx.gw.url}/socket.io/?EIO=4&transport=polling`);
    const open = JSON.parse((await res.text()).slice(1));
    const sock = net.connect(ctx.gw.port, "127.0.0.1");
    sock.on("error", () => {});
    sock.write(`POST /socket.io/?EIO=4&transport=polling&sid=${open.sid} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n`);
    const trickle = setInterval(() => sock.writable && sock.write("4"), 500);
    try {
      assert.ok(await closedWithin(sock, 6000), "trickling POST still open after 6 s");
    } finally {
      clearInterval(trickle);
      sock.destroy();
    }
  });
});

// --- 7. a stalled websocket is dropped ---------------------------------------------------

describe("stalled websocket", () => {
  const ctx = useGateway({
    args: ["--jwt-secret", SECRET, "--api-token", API_TOKEN, "--ping-interval", "1s", "--ping-timeout", "1s",
      "--write-timeout", "2s", "--max-queue-bytes", "67108864"],
  });

  test("a peer that stops reading with megabytes queued is dropped within bounded time", async () => {
    const user = unique("stalled");
    const room = unique("room");
    const r = await Raw.open(ctx.gw, { stall: true });
    const reply = await rawConnect(r, { token: signJWT({ sub: user, join: ["*"] }, SECRET) });
    assert.ok(reply.startsWith("40{"), reply);
    r.send(`421["join","${room}"]`);
    await r.wait((f) => f.startsWith("431"));
    r.sock._socket.pause(); // stop reading: the kernel buffers fill, then the server's writes block
    const big = "x".repeat(900000);
    for (let i = 0; i < 20; i++) {
      const res = await ctx.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { event: "blob", rooms: [room], args: [big] } });
      assert.equal(res.status, 200, res.text);
    }
    const start = Date.now();
    const inRoom = async () => {
      const res = await ctx.gw.api("GET", `/api/v1/sockets?room=${encodeURIComponent(room)}`, { token: API_TOKEN });
      return (res.json.sockets || []).length;
    };
    await until(async () => (await inRoom()) === 0, "the stalled socket to be dropped", 10000);
    const secs = (Date.now() - start) / 1000;
    assert.ok(secs < 10, `stalled socket lived ${secs} s`);
    r.close();
  });
});

// --- 8. reserved names, cluster requests, the demo page ----------------------------------

describe("reserved names and headers", () => {
  const ctx = useGateway({ args: ["--jwt-secret", SECRET, "--demo"] });

  test("a client cannot publish the gateway's control events", async () => {
    const s = await ctx.connect(ws(signJWT({ sub: unique("forger"), publish: ["*"], join: ["*"] }, SECRET)));
    for (const event of ["roomcast:not-recovered", "roomcast:token-expiring"]) {
      const ack = await request(s, "publish", { room: unique("room"), event, data: {} });
      assert.equal(errCode(ack), "bad_request", `${event}: ${JSON.stringify(ack)}`);
    }
  });

  test("the demo page forbids framing and foreign scripts", async () => {
    const res = await fetch(ctx.gw.url + "/");
    const csp = res.headers.get("content-security-policy") || "";
    assert.match(csp, /frame-ancestors 'none'/, csp);
    assert.match(csp, /script-src 'self'/, csp);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  });
});

describe("cluster requests carry no credentials", () => {
  test("presence across nodes publishes no token or header on Redis", async () => {
    const redis = await startRedis();
    const args = ["--jwt-secret", SECRET, "--redis", redis.url, "--origins", "*"];
    const a = await startGateway({ args });
    const b = await startGateway({ args });
    const sniff = net.connect(redis.port, "127.0.0.1");
    let seen = "";
    sniff.on("data", (d) => (seen += d.toString("latin1")));
    sniff.write("PSUBSCRIBE *\r\n");
    const room = unique("room");
    const token = signJWT({ sub: unique("member"), join: ["*"], secretclaim: "TOPSECRET" }, SECRET);
    const clients = [];
    try {
      const m = io(a.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token }, extraHeaders: { cookie: "session=COOKIESECRET" } });
      clients.push(m);
      await connected(m);
      assert.equal((await request(m, "join", room)).ok, true);
      const q = io(b.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: signJWT({ sub: unique("asker"), join: ["*"] }, SECRET) } });
      clients.push(q);
      await connected(q);
      const ack = await request(q, "presence", { room });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.equal(ack.users.length, 1);
      await sleep(200);
      assert.ok(seen.length > 0, "the sniffer saw no cluster traffic");
      for (const secret of [token, "TOPSECRET", "COOKIESECRET"]) {
        assert.ok(!seen.includes(secret), `Redis carried ${secret.slice(0, 20)}…`);
      }
    } finally {
      for (const c of clients) c.disconnect();
      sniff.destroy();
      await a.stop();
      await b.stop();
      await redis.stop();
    }
  });
});
