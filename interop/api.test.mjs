// The HTTP server API: bearer auth, POST /api/v1/emit to rooms, users and
// everyone, GET /api/v1/sockets.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { nextEvent, payload, record, request, unique, useGateway } from "./gateway.mjs";

const API_TOKEN = "api-" + unique("t");
const ctx = useGateway({ args: ["--allow-anonymous", "--api-token", API_TOKEN] });

const ok = (ack) => assert.equal(ack && ack.ok, true, `want {ok:true}, got ${JSON.stringify(ack)}`);
const emit = (body) => ctx.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body });
const accepted = (res) => assert.ok(res.status === 200 || res.status === 202, `emit: ${res.status} ${res.text}`);
const sockets = async (query) => {
  const res = await ctx.gw.api("GET", `/api/v1/sockets?${new URLSearchParams(query)}`, { token: API_TOKEN });
  assert.equal(res.status, 200, res.text);
  assert.ok(res.json && Array.isArray(res.json.sockets), res.text);
  return res.json.sockets;
};
const connect = (name, transports = ["websocket"]) => ctx.connect({ transports, auth: { name } });

describe("bearer token", () => {
  const cases = [
    ["no Authorization header", {}],
    ["wrong token", { authorization: "Bearer nope" }],
    ["right token, wrong scheme", { authorization: `Basic ${API_TOKEN}` }],
    ["token with a suffix", { authorization: `Bearer ${API_TOKEN}x` }],
    ["empty bearer", { authorization: "Bearer " }],
  ];
  for (const [name, headers] of cases) {
    for (const [method, path, body] of [
      ["POST", "/api/v1/emit", { namespace: "/", event: "x", args: [] }],
      ["GET", "/api/v1/sockets?namespace=/", undefined],
    ]) {
      test(`${name}: ${method} ${path} -> 401`, async () => {
        const res = await fetch(ctx.gw.url + path, {
          method,
          headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) },
          body: body && JSON.stringify(body),
          signal: AbortSignal.timeout(5000),
        });
        const text = await res.text();
        assert.equal(res.status, 401, text);
        const json = JSON.parse(text);
        assert.equal(typeof json.error, "object", text);
        assert.ok(json.error.message || json.error.code, text);
      });
    }
  }

  test("a refused emit delivers nothing", async () => {
    const s = await connect("alice");
    const news = record(s, "news");
    const res = await ctx.gw.api("POST", "/api/v1/emit", { token: "nope", body: { namespace: "/", event: "news", args: [1] } });
    assert.equal(res.status, 401);
    const sync = nextEvent(s, "sync");
    accepted(await emit({ namespace: "/", event: "sync", args: [], broadcast: true }));
    await sync;
    assert.deepEqual(news.events, []);
  });
});

describe("POST /api/v1/emit", () => {
  test("to a room reaches its members and not others", async () => {
    const room = unique("news");
    const member1 = await connect("m1");
    const member2 = await connect("m2", ["polling"]);
    const other = await connect("other");
    for (const s of [member1, member2]) ok(await request(s, "join", room));
    const otherNews = record(other, "news");
    const got = [nextEvent(member1, "news"), nextEvent(member2, "news")];
    const args = [{ headline: "hello", tags: ["a", "b"] }, 42, "three", null, true];
    accepted(await emit({ namespace: "/", event: "news", args, rooms: [room], except: [], users: [] }));
    const [a1, a2] = await Promise.all(got);
    assert.deepEqual(payload(member1, a1), args);
    assert.deepEqual(payload(member2, a2), args);

    // A later emit to everyone reaches `other` after anything addressed to it before.
    const sync = nextEvent(other, "sync");
    accepted(await emit({ namespace: "/", event: "sync", args: ["x"], broadcast: true }));
    await sync;
    assert.deepEqual(otherNews.events, [], "a non-member got the room's emit");
  });

  test("except leaves out the members of the excepted rooms", async () => {
    const [room, vip] = [unique("all"), unique("vip")];
    const plain = await connect("plain");
    const special = await connect("special");
    ok(await request(plain, "join", room));
    ok(await request(special, "join", room));
    ok(await request(special, "join", vip));
    const specialNews = record(special, "news");
    const got = nextEvent(plain, "news");
    accepted(await emit({ namespace: "/", event: "news", args: ["n"], rooms: [room], except: [vip] }));
    assert.deepEqual(payload(plain, await got), ["n"]);
    const sync = nextEvent(special, "sync");
    accepted(await emit({ namespace: "/", event: "sync", args: [], rooms: [vip] }));
    await sync;
    assert.deepEqual(specialNews.events, []);
  });

  test("to users reaches that user only", async () => {
    const alice = await connect("alice");
    const bob = await connect("bob");
    const [info] = (await sockets({ namespace: "/" })).filter((s) => s.id === alice.id);
    assert.ok(info, "alice is listed");
    const bobNews = record(bob, "news");
    const got = nextEvent(alice, "news");
    accepted(await emit({ namespace: "/", event: "news", args: [{ for: "alice" }], users: [info.user] }));
    assert.deepEqual(payload(alice, await got), [{ for: "alice" }]);
    const sync = nextEvent(bob, "sync");
    accepted(await emit({ namespace: "/", event: "sync", args: [], broadcast: true }));
    await sync;
    assert.deepEqual(bobNews.events, []);
  });

  test("with broadcast: true reaches every socket of the namespace", async () => {
    const clients = await Promise.all(["a", "b", "c"].map((n, i) => connect(n, i === 1 ? ["polling"] : ["websocket"])));
    const got = clients.map((s) => nextEvent(s, "broadcast"));
    accepted(await emit({ namespace: "/", event: "broadcast", args: [{ n: 1 }], broadcast: true }));
    for (const [i, args] of (await Promise.all(got)).entries()) assert.deepEqual(payload(clients[i], args), [{ n: 1 }]);
  });

  test("malformed requests are refused with a JSON error", async () => {
    const res = await fetch(ctx.gw.url + "/api/v1/emit", {
      method: "POST",
      headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
      body: "{not json",
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    assert.equal(res.status, 400, text);
    assert.equal(typeof JSON.parse(text).error, "object", text);
    const noEvent = await emit({ namespace: "/", args: [1] });
    assert.equal(noEvent.status, 400, noEvent.text);
  });
});

describe("GET /api/v1/sockets", () => {
  test("lists connected clients with their user and rooms", async () => {
    const room = unique("listed");
    const alice = await connect("alice");
    const bob = await connect("bob", ["polling"]);
    ok(await request(alice, "join", room));

    const inRoom = await sockets({ namespace: "/", room });
    assert.deepEqual(inRoom.map((s) => s.id), [alice.id]);
    const [info] = inRoom;
    assert.match(info.user, /^anon:./);
    assert.ok(Array.isArray(info.rooms) && info.rooms.includes(room), JSON.stringify(info));
    assert.equal(typeof info.node, "string");
    assert.ok(info.node.length > 0);

    const all = await sockets({ namespace: "/" });
    const ids = all.map((s) => s.id);
    assert.ok(ids.includes(alice.id) && ids.includes(bob.id), JSON.stringify(all));
    const bobInfo = all.find((s) => s.id === bob.id);
    assert.notEqual(bobInfo.user, info.user);
    assert.ok(!bobInfo.rooms.includes(room));

    // Gone after disconnect (the server learns it asynchronously).
    alice.disconnect();
    let left;
    for (let i = 0; i < 100; i++) {
      left = await sockets({ namespace: "/", room });
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(left, []);
  });
});
