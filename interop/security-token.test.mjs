// Token lifetime and rights re-checked on recovery (docs/SECURITY.md), attacked through the real binary.
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

