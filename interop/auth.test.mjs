// JWT authentication and permissions: refused connects carry the reason in
// connect_error, and join/publish follow the token's glob patterns.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { nextEvent, now, record, request, signJWT, unique, unsignedJWT, useGateway } from "./gateway.mjs";

const SECRET = "interop-secret-" + unique("s");
const API_TOKEN = "api-" + unique("t");
// Dozens of refused CONNECTs from 127.0.0.1 in a row: over --connect-rate, which security-limits tests.
const ctx = useGateway({ args: ["--jwt-secret", SECRET, "--api-token", API_TOKEN, "--connect-rate", "-1"] });

const ok = (ack) => assert.equal(ack && ack.ok, true, `want {ok:true}, got ${JSON.stringify(ack)}`);
const forbidden = (ack) => {
  assert.ok(ack && ack.error, `want an error ack, got ${JSON.stringify(ack)}`);
  assert.equal(ack.error.code, "forbidden", JSON.stringify(ack));
};
const ws = (token) => ({ transports: ["websocket"], auth: { token } });
// The contract's reason, optionally followed by ": <detail>".
const sentinel = (message, want) =>
  assert.ok(message === want || message.startsWith(want + ": "), `connect_error ${JSON.stringify(message)}, want ${JSON.stringify(want)}[: detail]`);

describe("refused connects", () => {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const tamper = (token) => {
    const [h, , s] = token.split(".");
    return `${h}.${b64({ sub: "root", exp: now() + 3600 })}.${s}`;
  };
  // [name, auth payload, exact message or RegExp]
  const cases = [
    ["no auth at all", undefined, "auth: token required"],
    ["anonymous not allowed", { name: "alice" }, "auth: token required"],
    ["empty token", { token: "" }, /^auth: (token required|malformed token)/],
    ["not a JWT", { token: "abc" }, "auth: malformed token"],
    ["two segments", { token: "abc.def" }, "auth: malformed token"],
    ["garbage segments", { token: "!!.@@.##" }, "auth: malformed token"],
    ["header not JSON", { token: `${Buffer.from("nope").toString("base64url")}.${b64({ sub: "u" })}.c2ln` }, "auth: malformed token"],
    ["token not a string", { token: 12345 }, /^auth: /],
    ["expired", { token: signJWT({ sub: "u1", exp: now() - 120 }, SECRET) }, "auth: token expired"],
    ["not yet valid (nbf)", { token: signJWT({ sub: "u1", nbf: now() + 3600 }, SECRET) }, /^auth: /],
    ["alg none", { token: unsignedJWT({ sub: "u1" }) }, "auth: algorithm not allowed"],
    ["alg none, upper case", { token: `${b64({ alg: "NONE", typ: "JWT" })}.${b64({ sub: "u1", exp: now() + 60 })}.` }, /^auth: /],
    ["wrong secret", { token: signJWT({ sub: "u1" }, "not-the-secret") }, "auth: invalid signature"],
    ["tampered payload", { token: tamper(signJWT({ sub: "u1" }, SECRET)) }, "auth: invalid signature"],
    [
      "RS256 header with an HMAC signature (algorithm confusion)",
      {
        token: (() => {
          const input = `${b64({ alg: "RS256", typ: "JWT" })}.${b64({ sub: "u1", exp: now() + 60 })}`;
          return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
        })(),
      },
      /^auth: /,
    ],
    ["no sub", { token: signJWT({ join: ["*"] }, SECRET) }, /^auth: /],
  ];
  for (const [name, auth, want] of cases) {
    test(name, async () => {
      const err = await ctx.connectError({ transports: ["websocket"], ...(auth === undefined ? {} : { auth }) });
      if (want instanceof RegExp) assert.match(err.message, want);
      else sentinel(err.message, want);
    });
  }

  test("refused over polling too", async () => {
    const err = await ctx.connectError({ transports: ["polling"], auth: { token: signJWT({ sub: "u1" }, "wrong") } });
    sentinel(err.message, "auth: invalid signature");
  });

  test("unknown namespace", async () => {
    const err = await ctx.connectError(ws(signJWT({ sub: "u1" }, SECRET)), "/nope");
    assert.equal(err.message, "Invalid namespace");
  });

  for (const alg of ["HS256", "HS384", "HS512"]) {
    test(`a valid ${alg} token connects`, async () => {
      const s = await ctx.connect(ws(signJWT({ sub: `user-${alg}` }, SECRET, { alg })));
      assert.equal(s.connected, true);
    });
  }
});

describe("permissions", () => {
  const u1 = () => signJWT({ sub: "u1", name: "Uno", join: ["room:*"], publish: ["room:a-*", "user:*"], dm: ["u2"] }, SECRET);
  const u2 = () => signJWT({ sub: "u2", join: ["room:*", "lobby"], publish: [] }, SECRET);

  test("join follows the join patterns", async () => {
    const s = await ctx.connect(ws(u1()));
    ok(await request(s, "join", "room:x"));
    ok(await request(s, "join", "room:with:colons and spaces"));
    forbidden(await request(s, "join", "other"));
    forbidden(await request(s, "join", "xroom:x"));
    forbidden(await request(s, "join", "lobby"));
    const t = await ctx.connect(ws(u2()));
    ok(await request(t, "join", "lobby"));
    forbidden(await request(t, "join", "lobby2"));
  });

  test("no join claim, no rooms", async () => {
    const s = await ctx.connect(ws(signJWT({ sub: "u9" }, SECRET)));
    forbidden(await request(s, "join", "room:a-1"));
    forbidden(await request(s, "publish", { room: "room:a-1", event: "chat", data: 1 }));
  });

  test("publish follows the publish patterns", async () => {
    const room = unique("room:a");
    const sender = await ctx.connect(ws(u1()));
    const member = await ctx.connect(ws(u2()));
    ok(await request(member, "join", room));
    ok(await request(member, "join", "room:b"));
    const memberChat = record(member, "chat");

    const got = nextEvent(member, "chat");
    ok(await request(sender, "publish", { room, event: "chat", data: "allowed" }));
    const [data, meta] = await got;
    assert.equal(data, "allowed");
    assert.deepEqual({ room: meta.room, user: meta.user, name: meta.name }, { room, user: "u1", name: "Uno" });

    forbidden(await request(sender, "publish", { room: "room:b", event: "chat", data: "denied" }));
    forbidden(await request(sender, "publish", { rooms: [room, "room:b"], event: "chat", data: "denied" }));
    forbidden(await request(member, "publish", { room, event: "chat", data: "denied" }));

    // Only the allowed publish was delivered: a later allowed one arrives next.
    const next = nextEvent(member, "chat");
    ok(await request(sender, "publish", { room, event: "chat", data: "second" }));
    assert.equal((await next)[0], "second");
    assert.deepEqual(memberChat.events.map((a) => a[0]), ["allowed", "second"]);
  });

  test("direct messages need the dm claim for the user (publish on user:* is not one) and reach every socket of the user", async () => {
    const sender = await ctx.connect(ws(u1()));
    const phone = await ctx.connect(ws(u2()));
    const laptop = await ctx.connect({ transports: ["polling"], auth: { token: u2() } });
    const got = [nextEvent(phone, "dm"), nextEvent(laptop, "dm")];
    const bytes = Buffer.from([9, 8, 7]);
    ok(await request(sender, "publish", { user: "u2", event: "dm", data: { text: "hi", bytes } }));
    for (const [data, meta] of await Promise.all(got)) {
      assert.equal(data.text, "hi");
      assert.ok(Buffer.isBuffer(data.bytes) && data.bytes.equals(bytes));
      assert.equal(meta.user, "u1");
      assert.equal(meta.name, "Uno");
    }
    forbidden(await request(sender, "publish", { user: "u3", event: "dm", data: 1 }));
    forbidden(await request(phone, "publish", { user: "u1", event: "dm", data: 1 }));
  });

  test("presence counts a user once across sockets", async () => {
    const room = unique("room:p");
    const a = await ctx.connect(ws(u1()));
    const b1 = await ctx.connect(ws(u2()));
    const b2 = await ctx.connect(ws(u2()));
    for (const s of [a, b1, b2]) ok(await request(s, "join", room));
    const ack = await request(a, "presence", { room });
    ok(ack);
    assert.deepEqual(ack.users.map((u) => u.user).sort(), ["u1", "u2"]);
    assert.equal(ack.users.find((u) => u.user === "u1").name, "Uno");
    // One of u2's sockets leaving keeps u2 present.
    ok(await request(b1, "leave", room));
    const after = await request(a, "presence", { room });
    assert.deepEqual(after.users.map((u) => u.user).sort(), ["u1", "u2"]);
  });

  test("the HTTP API lists the socket with its JWT user and rooms", async () => {
    const room = unique("room:api");
    const s = await ctx.connect(ws(u1()));
    ok(await request(s, "join", room));
    const res = await ctx.gw.api("GET", `/api/v1/sockets?namespace=/&room=${encodeURIComponent(room)}`, { token: API_TOKEN });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.sockets.length, 1, res.text);
    const [info] = res.json.sockets;
    assert.equal(info.id, s.id);
    assert.equal(info.user, "u1");
    assert.ok(info.rooms.includes(room), res.text);
  });
});
