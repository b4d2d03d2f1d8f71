// API selectors, HTTP timeouts, write deadlines, reserved names, what crosses Redis (docs/SECURITY.md), attacked through the real binary.
import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import { io } from "socket.io-client";
import { Raw, rawConnect } from "./raw.mjs";
import {
  TIMEOUT, connected, nextEvent, now, record, request, signJWT, startGateway, startRedis, unique, until, useGateway,
} from "./gateway.mjs";

const SECRET = unique("sec-secret");
const API_TOKEN = unique("sec-api");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ws = (token) => ({ transports: ["websocket"], auth: { token } });
const errCode = (ack) => ack && ack.error && ack.error.code;

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

describe("session handover between nodes", () => {
  test("a client cannot take a polling session over through the nodes' handover endpoint", async () => {
    const redis = await startRedis();
    const a = await startGateway({ args: ["--jwt-secret", SECRET, "--redis", redis.url, "--origins", "*"] });
    try {
      const token = signJWT({ sub: unique("victim") }, SECRET);
      const handshake = await fetch(`${a.url}/socket.io/?EIO=4&transport=polling`);
      const sid = JSON.parse((await handshake.text()).slice(1)).sid;
      const post = await fetch(`${a.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
        method: "POST", body: `40${JSON.stringify({ token })}`, headers: { "content-type": "text/plain;charset=UTF-8" },
      });
      assert.equal(await post.text(), "ok");
      for (const phase of ["begin", "take"]) {
        for (const headers of [{}, { "x-roomcast-forward": "guess" }]) {
          const res = await fetch(`${a.url}/roomcast/v1/handover?phase=${phase}&sid=${sid}`, { method: "POST", headers });
          const body = await res.text();
          assert.equal(res.status, 403, `${phase} ${JSON.stringify(headers)}: ${res.status} ${body}`);
          assert.ok(!body.includes(token), "the session's token leaked");
        }
      }
      // The session is untouched: its CONNECT reply is still there to fetch.
      const poll = await fetch(`${a.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      assert.match(await poll.text(), /^40\{.*"sid"/);
    } finally {
      await a.stop();
      await redis.stop();
    }
  });
});
