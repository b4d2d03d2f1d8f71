// Rate limits and connection caps that follow the identity (docs/SECURITY.md), attacked through the real binary.
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
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


describe("handshake rate", () => {
  const ctx = useGateway({ args: ["--jwt-secret", SECRET, "--handshake-rate", "2"] });
  test("handshakes over the limit get HTTP 429 and the official client a connect_error", async () => {
    let res;
    for (let i = 0; i < 20; i++) {
      res = await fetch(`${ctx.gw.url}/socket.io/?EIO=4&transport=polling`);
      if (res.status !== 200) break;
      await res.text();
    }
    assert.equal(res.status, 429);
    assert.deepEqual(await res.json(), { code: 7, message: "Too many requests" });
    assert.ok(Number(res.headers.get("retry-after")) >= 1, "no Retry-After");
    const err = await ctx.connectError({ transports: ["polling"], auth: { token: signJWT({ sub: unique("h") }, SECRET) } });
    assert.equal(err.description, 429, `connect_error ${err.message} ${err.description}`);
  });
});

describe("connection caps per IP", () => {
  const ctx = useGateway({ args: ["--allow-anonymous", "--max-conns-per-ip", "3"] });
  test("the fourth socket from one IP is refused, and a disconnect frees a place", async () => {
    const socks = [];
    for (let i = 0; i < 3; i++) socks.push(await ctx.connect({ transports: ["websocket"] }));
    const err = await ctx.connectError({ transports: ["websocket"] });
    assert.match(err.message, /too many connections/);
    assert.equal(err.data && err.data.code, "too_many_connections");
    socks[0].disconnect();
    await until(async () => {
      try {
        await ctx.connect({ transports: ["websocket"] });
        return true;
      } catch {
        return false;
      }
    }, "a freed place");
  });
});

describe("with Redis, the limits are cluster-wide", () => {
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  const args = () => ["--redis", redis.url, "--origins", "*", "--jwt-secret", SECRET, "--max-conns-per-user", "1"];
  const a = useGateway(() => ({ args: args() }));
  const b = useGateway(() => ({ args: args() }));
  after(async () => {
    if (redis) await redis.stop();
  });
  test("a user's socket cap holds across nodes", async () => {
    const token = signJWT({ sub: unique("roamer") }, SECRET);
    const first = await a.connect(ws(token));
    const err = await b.connectError(ws(token));
    assert.match(err.message, /too many connections/);
    first.disconnect();
    await until(async () => {
      try {
        await b.connect(ws(token));
        return true;
      } catch {
        return false;
      }
    }, "the place freed on the other node");
  });
});
