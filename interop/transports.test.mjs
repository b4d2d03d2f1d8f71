// The official client on each transport: websocket only, polling only, and the
// default (polling, then upgrade to websocket). Anonymous connections.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { nextEvent, request, unique, until, useGateway } from "./gateway.mjs";

const ctx = useGateway({ args: ["--allow-anonymous"] });

// A member of `room` receives what another client publishes there, with meta.
async function roundTrip(sender, receiver) {
  const room = unique("t");
  const joined = await request(receiver, "join", room);
  assert.equal(joined.ok, true, JSON.stringify(joined));
  const got = nextEvent(receiver, "chat");
  const ack = await request(sender, "publish", { room, event: "chat", data: { text: "hi", n: 1 } });
  assert.equal(ack.ok, true, JSON.stringify(ack));
  const [data, meta] = await got;
  assert.deepEqual(data, { text: "hi", n: 1 });
  assert.equal(meta.room, room);
  assert.equal(meta.name, "sender");
  assert.match(meta.user, /^anon:/);
}

describe("transports", () => {
  test("websocket only", async () => {
    const a = await ctx.connect({ transports: ["websocket"], auth: { name: "sender" } });
    const b = await ctx.connect({ transports: ["websocket"], auth: { name: "receiver" } });
    assert.equal(a.io.engine.transport.name, "websocket");
    assert.ok(a.id, "socket id set on connect");
    await roundTrip(a, b);
    assert.equal(a.io.engine.transport.name, "websocket");
  });

  test("polling only", async () => {
    const a = await ctx.connect({ transports: ["polling"], auth: { name: "sender" } });
    const b = await ctx.connect({ transports: ["polling"], auth: { name: "receiver" } });
    assert.equal(a.io.engine.transport.name, "polling");
    // Several round trips, so the long-poll GET is answered by a push more than once.
    for (let i = 0; i < 3; i++) await roundTrip(a, b);
    assert.equal(b.io.engine.transport.name, "polling");
  });

  test("default transports upgrade from polling to websocket", async () => {
    const s = ctx.client("/", { auth: { name: "sender" } });
    // The Engine.IO session opens over polling; the upgrade may finish before
    // or after the Socket.IO CONNECT is answered.
    const opened = new Promise((resolve) => s.io.once("open", () => resolve(s.io.engine.transport.name)));
    const upgraded = new Promise((resolve) => s.io.once("open", () => s.io.engine.once("upgrade", (t) => resolve(t.name))));
    s.connect();
    assert.equal(await opened, "polling", "the session opens over polling");
    await new Promise((resolve) => (s.connected ? resolve() : s.once("connect", resolve)));
    await until(() => s.io.engine.transport.name === "websocket", "the upgrade to websocket");
    assert.equal(await upgraded, "websocket");
    // The session survives the upgrade: acks and deliveries still work.
    const other = await ctx.connect({ auth: { name: "receiver" } });
    await roundTrip(s, other);
    await roundTrip(s, other);
    assert.equal(s.io.engine.transport.name, "websocket");
  });

  test("polling and websocket clients talk to each other", async () => {
    const p = await ctx.connect({ transports: ["polling"], auth: { name: "sender" } });
    const w = await ctx.connect({ transports: ["websocket"], auth: { name: "sender" } });
    await roundTrip(p, w);
    await roundTrip(w, p);
  });

  test("disconnect, then a new connection", async () => {
    const s = await ctx.connect({ transports: ["websocket"], auth: { name: "sender" } });
    const gone = nextEvent(s, "disconnect");
    s.disconnect();
    const [reason] = await gone;
    assert.equal(reason, "io client disconnect");
    const again = await ctx.connect({ transports: ["websocket"], auth: { name: "sender" } });
    assert.notEqual(again.id, s.id);
  });
});
