// The reserved events (join, leave, publish, presence) and their acks, binary
// payloads, direct messages and error codes, with anonymous clients.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { nextEvent, record, request, unique, useGateway } from "./gateway.mjs";

// A client per test, all from 127.0.0.1: over --connect-rate, which security-limits tests.
const ctx = useGateway({ args: ["--allow-anonymous", "--allow-anonymous-dm", "--connect-rate", "-1"] });

const ok = (ack) => assert.equal(ack && ack.ok, true, `want {ok:true}, got ${JSON.stringify(ack)}`);
const fails = (ack, code) => {
  assert.ok(ack && ack.error, `want an error ack, got ${JSON.stringify(ack)}`);
  if (code) assert.equal(ack.error.code, code, JSON.stringify(ack));
  assert.equal(typeof ack.error.message, "string");
  assert.ok(ack.error.message.length > 0, "error message is not empty");
};

// Two connected clients named alice and bob, on the given transports.
async function pair(transports = ["websocket"]) {
  const alice = await ctx.connect({ transports, auth: { name: "alice" } });
  const bob = await ctx.connect({ transports, auth: { name: "bob" } });
  return { alice, bob };
}

// The user id the gateway gave `socket`, learnt from what another member sees.
async function userIdOf(socket, observer) {
  const room = unique("whois");
  ok(await request(observer, "join", room));
  const got = nextEvent(observer, "whois");
  ok(await request(socket, "publish", { room, event: "whois", data: null }));
  const [, meta] = await got;
  return meta.user;
}

describe("reserved events", () => {
  test("join, publish, leave: members get it, non-members and the sender do not", async () => {
    const { alice, bob } = await pair();
    const carol = await ctx.connect({ transports: ["websocket"], auth: { name: "carol" } });
    const room = unique("room");
    const barrier = unique("barrier");
    for (const s of [alice, bob]) ok(await request(s, "join", room));
    for (const s of [alice, bob, carol]) ok(await request(s, "join", barrier));

    const aliceChat = record(alice, "chat");
    const carolChat = record(carol, "chat");
    const bobGot = nextEvent(bob, "chat");
    const ack = await request(alice, "publish", { room, event: "chat", data: "hello room" });
    ok(ack);
    const [data, meta] = await bobGot;
    assert.equal(data, "hello room");
    assert.deepEqual({ room: meta.room, name: meta.name }, { room, name: "alice" });
    assert.match(meta.user, /^anon:./);

    // Everything alice and carol would have got from that publish comes before
    // this one, which bob sends after he received it.
    const seen = Promise.all([nextEvent(alice, "sync"), nextEvent(carol, "sync")]);
    ok(await request(bob, "publish", { room: barrier, event: "sync", data: 1 }));
    await seen;
    assert.deepEqual(aliceChat.events, [], "the sender does not get its own publish");
    assert.deepEqual(carolChat.events, [], "a non-member does not get it");

    // After leaving, bob gets nothing more from the room.
    ok(await request(bob, "leave", room));
    const bobChat = record(bob, "chat");
    const bobSync = nextEvent(bob, "sync");
    ok(await request(alice, "publish", { room, event: "chat", data: "after leave" }));
    ok(await request(alice, "publish", { room: barrier, event: "sync", data: 2 }));
    const [n] = await bobSync;
    assert.equal(n, 2);
    assert.deepEqual(bobChat.events, [], "no delivery after leave");
  });

  test("the publisher need not be a member", async () => {
    const { alice, bob } = await pair();
    const room = unique("room");
    ok(await request(bob, "join", room));
    const got = nextEvent(bob, "news");
    ok(await request(alice, "publish", { room, event: "news", data: { a: [1, 2, { b: null }] } }));
    assert.deepEqual((await got)[0], { a: [1, 2, { b: null }] });
  });

  // socket.io's io.to([r1, r2]) delivers once per socket; the gateway tags each
  // delivery with its room, so it may send one copy per room instead. Either
  // way: no copy for a room the socket is not in, and no room twice.
  test("publish to several rooms reaches each member, tagged with its rooms", async () => {
    const { alice, bob } = await pair();
    const carol = await ctx.connect({ transports: ["websocket"], auth: { name: "carol" } });
    const [r1, r2, barrier] = [unique("r1"), unique("r2"), unique("barrier")];
    ok(await request(bob, "join", r1));
    ok(await request(bob, "join", r2));
    ok(await request(carol, "join", r2));
    ok(await request(bob, "join", barrier));
    const bobMulti = record(bob, "multi");
    const carolGot = nextEvent(carol, "multi");
    ok(await request(alice, "publish", { rooms: [r1, r2], event: "multi", data: "x" }));
    const [data, meta] = await carolGot;
    assert.equal(data, "x");
    assert.equal(meta.room, r2);
    const sync = nextEvent(bob, "sync");
    ok(await request(alice, "publish", { room: barrier, event: "sync", data: null }));
    await sync;
    const bobRooms = bobMulti.events.map((args) => args[1].room);
    assert.ok(bobRooms.length === 1 || bobRooms.length === 2, `bob got ${bobRooms.length} copies`);
    assert.equal(new Set(bobRooms).size, bobRooms.length, `one copy per room at most: ${bobRooms}`);
    for (const r of bobRooms) assert.ok(r === r1 || r === r2, r);
    for (const args of bobMulti.events) assert.equal(args[0], "x");
  });

  test("presence lists the distinct users in a room with their names", async () => {
    const { alice, bob } = await pair();
    const room = unique("room");
    ok(await request(alice, "join", room));
    ok(await request(bob, "join", room));
    const ack = await request(alice, "presence", { room });
    ok(ack);
    assert.ok(Array.isArray(ack.users), JSON.stringify(ack));
    const names = ack.users.map((u) => u.name).sort();
    assert.deepEqual(names, ["alice", "bob"]);
    for (const u of ack.users) assert.match(u.user, /^anon:./);
    assert.notEqual(ack.users[0].user, ack.users[1].user);

    ok(await request(bob, "leave", room));
    const after = await request(alice, "presence", { room });
    ok(after);
    assert.deepEqual(after.users.map((u) => u.name), ["alice"]);

    const empty = await request(alice, "presence", { room: unique("nobody") });
    ok(empty);
    assert.deepEqual(empty.users, []);
  });

  test("a disconnected user leaves presence", async () => {
    const { alice, bob } = await pair();
    const room = unique("room");
    ok(await request(alice, "join", room));
    ok(await request(bob, "join", room));
    bob.disconnect();
    // The server learns of the close asynchronously: ask until it has.
    let users;
    for (let i = 0; i < 100; i++) {
      users = (await request(alice, "presence", { room })).users;
      if (users.length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(users.map((u) => u.name), ["alice"]);
  });

  test("direct message to a user", async () => {
    const { alice, bob } = await pair();
    const bobId = await userIdOf(bob, alice);
    const aliceId = await userIdOf(alice, bob);
    assert.notEqual(aliceId, bobId);
    const got = nextEvent(bob, "dm");
    ok(await request(alice, "publish", { user: bobId, event: "dm", data: { text: "psst" } }));
    const [data, meta] = await got;
    assert.deepEqual(data, { text: "psst" });
    assert.equal(meta.user, aliceId);
    assert.equal(meta.name, "alice");
    assert.equal(meta.room, undefined, "a direct message has no room");
  });

  test("unknown events with an ack get unknown_event; without one, nothing breaks", async () => {
    const { alice } = await pair();
    fails(await request(alice, "hello", { x: 1 }), "unknown_event");
    fails(await request(alice, "chat"), "unknown_event");
    alice.emit("fire-and-forget", 1, 2, 3);
    ok(await request(alice, "join", unique("still-works")));
    assert.equal(alice.connected, true);
  });

  const bad = [
    ["join a number", "join", [42]],
    ["join an empty name", "join", [""]],
    ["join with no argument", "join", []],
    ["leave a number", "leave", [3]],
    ["leave an object without a room", "leave", [{ name: "x" }]],
    ["publish with no target", "publish", [{ event: "chat", data: 1 }]],
    ["publish with no event", "publish", [{ room: "x", data: 1 }]],
    ["publish a string", "publish", ["x"]],
    ["publish to a non-string room", "publish", [{ room: 7, event: "chat", data: 1 }]],
    ["publish to rooms that is not a list", "publish", [{ rooms: "x", event: "chat", data: 1 }]],
    ["presence with no room", "presence", [{}]],
    ["presence of a number", "presence", [5]],
  ];
  for (const [name, event, args] of bad) {
    test(`bad_request: ${name}`, async () => {
      const s = await ctx.connect({ transports: ["websocket"], auth: { name: "x" } });
      fails(await request(s, event, ...args), "bad_request");
      assert.equal(s.connected, true, "a bad request does not cost the connection");
    });
  }

  test("publishing a reserved Socket.IO event name is refused", async () => {
    const { alice, bob } = await pair();
    const room = unique("room");
    ok(await request(bob, "join", room));
    const bobConnect = record(bob, "connect");
    for (const event of ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]) {
      fails(await request(alice, "publish", { room, event, data: 1 }));
    }
    assert.deepEqual(bobConnect.events, []);
    assert.equal(bob.connected, true);
  });
});

describe("binary", () => {
  for (const transports of [["websocket"], ["polling"]]) {
    test(`Buffers in published data arrive as equal Buffers, both ways (${transports})`, async () => {
      const { alice, bob } = await pair(transports);
      const room = unique("bin");
      ok(await request(alice, "join", room));
      ok(await request(bob, "join", room));

      const small = Buffer.from([0, 1, 2, 253, 254, 255]);
      const big = Buffer.alloc(64 * 1024, 0xab);
      big.writeUInt32BE(0xdeadbeef, 1000);
      const gotBob = nextEvent(bob, "file");
      ok(await request(alice, "publish", { room, event: "file", data: { name: "a.bin", small, nested: [{ big }] } }));
      const [data, meta] = await gotBob;
      assert.equal(meta.room, room);
      assert.equal(data.name, "a.bin");
      assert.ok(Buffer.isBuffer(data.small), `small is a ${Object.prototype.toString.call(data.small)}`);
      assert.ok(Buffer.isBuffer(data.nested[0].big));
      assert.ok(data.small.equals(small));
      assert.ok(data.nested[0].big.equals(big));

      // Back the other way, the whole payload being a Buffer.
      const reply = Buffer.from("réponse \u0000 binaire", "utf8");
      const gotAlice = nextEvent(alice, "file");
      ok(await request(bob, "publish", { room, event: "file", data: reply }));
      const [back] = await gotAlice;
      assert.ok(Buffer.isBuffer(back));
      assert.ok(back.equals(reply));
    });
  }

  test("binary direct message", async () => {
    const { alice, bob } = await pair();
    const bobId = await userIdOf(bob, alice);
    const got = nextEvent(bob, "blob");
    const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    ok(await request(alice, "publish", { user: bobId, event: "blob", data: [payload, "tail"] }));
    const [data] = await got;
    assert.ok(Buffer.isBuffer(data[0]));
    assert.ok(data[0].equals(payload));
    assert.equal(data[1], "tail");
  });
});

describe("acks", () => {
  test("many concurrent acks are matched to their requests", async () => {
    const { alice } = await pair();
    const rooms = Array.from({ length: 50 }, (_, i) => unique(`c${i}`));
    const acks = await Promise.all(rooms.map((r) => request(alice, "join", r)));
    acks.forEach(ok);
    const presences = await Promise.all(rooms.map((room) => request(alice, "presence", { room })));
    for (const p of presences) assert.deepEqual(p.users.map((u) => u.name), ["alice"]);
  });

  // POST /api/v1/emit is fire-and-forget, so the gateway never asks a client
  // for an ack; server-to-client acks are tested in the Go socketio package
  // against the same wire format.
  test.skip("server to client acks (covered by the Go socketio tests)");
});
