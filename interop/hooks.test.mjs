// The backend's side of the gateway (docs/HOOKS.md) with the official
// client: client events answered by a webhook, its actions, the connect
// hook's refusal, a failing backend's bounds, signatures.
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import { after, describe, test } from "node:test";
import { nextEvent, payload, request, signJWT, unique, useGateway } from "./gateway.mjs";

const HOOK_SECRET = "interop-hook-secret";
const JWT_SECRET = "interop-jwt-secret";

// The verification snippet of docs/HOOKS.md.
function verify(secret, req, body) {
  const ts = req.headers["x-roomcast-timestamp"];
  const sig = req.headers["x-roomcast-signature"] || "";
  if (!ts || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const want = createHmac("sha256", secret).update(`${ts}.`).update(body).digest();
  return sig.split(",").some((part) => {
    part = part.trim();
    if (!part.startsWith("v1=")) return false; // only the scheme we know
    const got = Buffer.from(part.slice(3), "hex");
    return got.length === want.length && timingSafeEqual(got, want);
  });
}

// A test backend: `routes[type or event](body, res)` answers; it records
// every verified request.
function startBackend(secret, routes) {
  const seen = [];
  const hanging = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (!verify(secret, req, body)) {
        res.writeHead(401).end("bad signature");
        return;
      }
      const msg = JSON.parse(body);
      seen.push(msg);
      const route = routes[msg.type === "event" ? msg.event : msg.type];
      if (!route) {
        res.writeHead(404).end();
        return;
      }
      if (route === "hang") {
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
      }
      const out = route(msg);
      if (typeof out === "number") {
        res.writeHead(out).end("failed");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(out));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}/hook`,
        seen,
        close: () => {
          for (const res of hanging) res.destroy();
          server.closeAllConnections();
          return new Promise((r) => server.close(r));
        },
      });
    });
  });
}

const routes = {
  connect: (req) =>
    req.auth && req.auth.ticket === "banned"
      ? { accept: false, message: "banned by the backend", data: { reason: "ticket" } }
      : { accept: true, session: { plan: "pro" } },
  echo: (req) => ({ ack: [{ you: req.user, args: req.args, session: req.session }] }),
  enter: (req) => ({
    join: [req.args[0]],
    emit: [{ rooms: [req.args[0]], except: [req.socket], event: "entered", args: [req.user] }],
    ack: ["ok"],
  }),
  bytes: (req) => ({ ack: [{ $binary: Buffer.from(req.args[0].$binary, "base64").reverse().toString("base64") }] }),
  slow: "hang",
  broken: () => 500,
};

const backend = await startBackend(HOOK_SECRET, routes);
after(() => backend.close());

const tok = (sub, claims = {}) => signJWT({ sub, ...claims }, JWT_SECRET);

describe("webhook and connect hook", () => {
  const ctx = useGateway(() => ({
    args: [
      "--jwt-secret", JWT_SECRET, "--connect-rate", "-1",
      "--webhook", backend.url, "--connect-hook", backend.url, "--hook-secret", HOOK_SECRET,
      "--hook-timeout", "500ms", "--hook-breaker-failures", "-1",
    ],
  }));

  test("an event with an ack is answered by the backend", async () => {
    const s = await ctx.connect({ auth: { token: tok("alice") } });
    const ack = await request(s, "echo", { n: 1 }, "two");
    assert.deepEqual(ack, { you: "alice", args: [{ n: 1 }, "two"], session: { plan: "pro" } });
  });

  test("binary arguments travel as base64 both ways", async () => {
    const s = await ctx.connect({ auth: { token: tok("bin") } });
    const ack = await request(s, "bytes", Buffer.from([1, 2, 3]));
    assert.ok(Buffer.isBuffer(ack), `want a Buffer, got ${JSON.stringify(ack)}`);
    assert.deepEqual([...ack], [3, 2, 1]);
  });

  test("the backend's join and emit reach other clients", async () => {
    const room = unique("lobby");
    const alice = await ctx.connect({ auth: { token: tok("alice") } });
    const bob = await ctx.connect({ auth: { token: tok("bob", { join: [room] }) } });
    assert.deepEqual(await request(bob, "join", room), { ok: true });
    const seen = nextEvent(bob, "entered");
    // Alice's token allows no room: the backend, which is trusted, joins her.
    assert.deepEqual(await request(alice, "enter", room), "ok");
    assert.deepEqual(payload(bob, await seen), ["alice"]);
    // She is in the room now: a broadcast to it reaches her.
    const back = nextEvent(alice, "entered");
    assert.deepEqual(await request(bob, "enter", room), "ok");
    assert.deepEqual(payload(alice, await back), ["bob"]);
  });

  test("a refused connect shows the backend's message in connect_error", async () => {
    const err = await ctx.connectError({ auth: { token: tok("mallory"), ticket: "banned" } });
    assert.equal(err.message, "banned by the backend");
    assert.deepEqual(err.data, { reason: "ticket" });
    const req = backend.seen.findLast((m) => m.type === "connect" && m.user === "mallory");
    assert.equal(req.auth.token, undefined, "the token is not forwarded");
    assert.equal(req.claims.sub, "mallory");
  });

  test("a hanging or failing backend gives an error ack within the timeout", async () => {
    const s = await ctx.connect({ auth: { token: tok("carol") } });
    for (const event of ["slow", "broken"]) {
      const t0 = Date.now();
      const ack = await request(s, event);
      assert.equal(ack.error.code, "unavailable", JSON.stringify(ack));
      assert.ok(Date.now() - t0 < 1500, `${event} answered after ${Date.now() - t0} ms`);
    }
  });

  test("a hanging or failing backend, under load: every event answered, no goroutines or heap kept", async (t) => {
    const metric = async (name) => {
      const text = await (await fetch(ctx.gw.adminUrl + "/metrics")).text();
      const line = text.split("\n").find((l) => l.startsWith(name + " "));
      return Number(line.split(" ")[1]);
    };
    const clients = await Promise.all(Array.from({ length: 10 }, (_, i) => ctx.connect({ auth: { token: tok(`load${i}`) } })));
    const settle = () => new Promise((r) => setTimeout(r, 300));
    await settle();
    const g0 = await metric("go_goroutines");
    const h0 = await metric("go_memstats_heap_inuse_bytes");
    for (let round = 0; round < 3; round++) {
      // 10 clients x 20 events to a hanging backend, then as many to one
      // that answers 500: every one gets an error ack (the queue, the
      // timeout, the status) and nothing piles up.
      for (const event of ["slow", "broken"]) {
        const acks = await Promise.all(clients.flatMap((c) => Array.from({ length: 20 }, () => request(c, event))));
        for (const ack of acks) assert.equal(ack.error.code, "unavailable", `${event}: ${JSON.stringify(ack)}`);
      }
    }
    await settle();
    const g1 = await metric("go_goroutines");
    const h1 = await metric("go_memstats_heap_inuse_bytes");
    t.diagnostic(`after 1200 failed events: goroutines ${g0} -> ${g1}, heap in use ${(h0 / 1048576).toFixed(1)} -> ${(h1 / 1048576).toFixed(1)} MiB`);
    assert.ok(g1 <= g0 + 10, `goroutines ${g0} -> ${g1}`);
    assert.ok(h1 < h0 + 8 * 1024 * 1024, `heap in use ${h0} -> ${h1}`);
    const text = await (await fetch(ctx.gw.adminUrl + "/metrics")).text();
    assert.match(text, /roomcast_hook_requests_total\{hook="event",result="timeout"\} [1-9]/);
    assert.match(text, /roomcast_hook_requests_total\{hook="event",result="error"\} [1-9]/);
  });
});

describe("signatures", () => {
  // The gateway signs with a secret the backend does not know.
  const ctx = useGateway(() => ({
    args: ["--allow-anonymous", "--connect-rate", "-1", "--webhook", backend.url, "--hook-secret", "not-the-backends"],
  }));
  test("a request signed with another secret is refused by the backend", async () => {
    const s = await ctx.connect();
    const n = backend.seen.length;
    const ack = await request(s, "echo", 1);
    assert.deepEqual(ack, { error: { code: "unavailable", message: "backend: backend answered HTTP 401" } });
    assert.equal(backend.seen.length, n, "the backend handled nothing");
  });
});

describe("without a webhook", () => {
  const ctx = useGateway({ args: ["--allow-anonymous", "--connect-rate", "-1"] });
  test("other events still get unknown_event", async () => {
    const s = await ctx.connect();
    const ack = await request(s, "echo", 1);
    assert.equal(ack.error.code, "unknown_event");
  });
});

