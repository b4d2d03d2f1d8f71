// Durable quotas (docs/SECURITY.md), attacked through the real binary.
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

