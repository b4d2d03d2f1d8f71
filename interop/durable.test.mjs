// Durable delivery (SPEC §4) end to end, with the official socket.io-client:
// a durable message whose publish returned success reaches its user after a
// node crash, a rolling restart, on a third node from an app-held offset,
// and after a Redis restart with AOF, exactly once after de-duplication by
// offset and in order; an offset older than the retention is answered with
// the not-recovered signal, never a partial history.
//
// The client reaches the gateways through a small TCP proxy in this file (a
// stand-in load balancer), so a test can move it to another node or cut it
// off. Skipped when redis-server is not installed (set
// INTEROP_REQUIRE_REDIS=1 to fail instead).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import net from "node:net";
import { describe, test } from "node:test";
import { io } from "socket.io-client";
import { TIMEOUT, freePort, redisServerBin, signJWT, startGateway, startRedis, unique, until } from "./gateway.mjs";

const skip = !existsSync(redisServerBin) && process.env.INTEROP_REQUIRE_REDIS !== "1"
  ? `redis-server not found at ${redisServerBin} (apt-get install -y redis-server)`
  : false;
if (skip) console.log(`# skipping the durable delivery interop tests: ${skip}`);

const JWT_SECRET = unique("jwt-secret");
const API_TOKEN = unique("api-token");
const EVENT = "m";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- offsets -------------------------------------------------------------------

/**
 * Parses an offset's user stream entry ID "ms-seq" into [ms, seq] BigInts.
 * An offset is "<user stream ID>" or "<user stream ID>~<broadcast log
 * position>"; durable messages are ordered by the user part.
 */
function parseOffset(s) {
  const m = /^(\d+)-(\d+)(?:~\d+-\d+)?$/.exec(s);
  if (!m) throw new Error(`not an offset: ${JSON.stringify(s)}`);
  return [BigInt(m[1]), BigInt(m[2])];
}

/** -1, 0 or 1 as offset a precedes, equals or follows b (numerically, "ms-seq"). */
function cmpOffset(a, b) {
  const [am, as] = parseOffset(a);
  const [bm, bs] = parseOffset(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

/**
 * What a client application does with deliveries: keeps the greatest offset
 * seen and drops a message whose offset is not greater. Returns the kept
 * messages and the dropped ones.
 */
function dedupe(msgs) {
  const kept = [];
  const dropped = [];
  let max = null;
  for (const m of msgs) {
    if (max !== null && cmpOffset(m.offset, max) <= 0) {
      dropped.push(m);
      continue;
    }
    max = m.offset;
    kept.push(m);
  }
  return { kept, dropped };
}

const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);

// --- the stand-in load balancer -------------------------------------------------

/**
 * A TCP proxy on a free loopback port. Each new client connection goes to
 * the next live target, round-robin (with one target, always that one); a
 * target that refuses the connection is skipped. While paused it closes new
 * connections at once.
 */
class Proxy {
  constructor() {
    this.targets = []; // {name, port}
    this.rr = 0;
    this.paused = false;
    this.pairs = new Set(); // {target, client, upstream}
    this.accepted = new Map(); // target name -> connections forwarded
  }

  async start() {
    this.port = await freePort();
    this.server = net.createServer((c) => this.#forward(c));
    await new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, "127.0.0.1", resolve);
    });
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** Makes the live targets these gateways: [{name, port}] or Gateway-likes. */
  setTargets(targets) {
    this.targets = targets.map((t) => ({ name: t.name, port: t.port }));
  }

  #forward(client) {
    client.on("error", () => {});
    if (this.paused || this.targets.length === 0) {
      client.destroy();
      return;
    }
    client.pause();
    const start = this.rr++ % this.targets.length;
    const order = [...this.targets.slice(start), ...this.targets.slice(0, start)];
    const attempt = (i) => {
      if (i >= order.length || client.destroyed || this.paused) {
        client.destroy();
        return;
      }
      const target = order[i];
      const upstream = net.connect(target.port, "127.0.0.1");
      let open = false;
      upstream.on("error", () => {
        if (open) client.destroy();
        else attempt(i + 1); // refused: the next target
      });
      upstream.once("connect", () => {
        open = true;
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        const pair = { target: target.name, client, upstream };
        this.pairs.add(pair);
        this.accepted.set(target.name, (this.accepted.get(target.name) || 0) + 1);
        const close = () => {
          this.pairs.delete(pair);
          client.destroy();
          upstream.destroy();
        };
        client.on("close", close);
        upstream.on("close", close);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  }

  /** Cuts every forwarded connection (to the named target only, if given). */
  drop(name) {
    for (const p of [...this.pairs]) {
      if (name === undefined || p.target === name) {
        p.client.destroy();
        p.upstream.destroy();
      }
    }
  }

  /** Refuses new connections and cuts the current ones (a network cut). */
  pause() {
    this.paused = true;
    this.drop();
  }

  resume() {
    this.paused = false;
  }

  async close() {
    this.pause();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

// --- a fleet of gateways, cleaned up whatever happens ---------------------------------

/**
 * Everything a test starts, stopped at its end; on failure the gateways' last
 * output is added to the error. `run(fn)` runs the test body with the fleet.
 */
class Fleet {
  constructor() {
    this.gateways = []; // every one ever started, in order
    this.sockets = new Set();
    this.proxies = new Set();
    this.redis = null;
  }

  async startRedis(opts) {
    this.redis = await startRedis(opts);
    return this.redis;
  }

  /** A gateway on this fleet's Redis; `name` is its --node-id. */
  async gateway(name, extra = []) {
    const args = [
      "--redis", this.redis.url, "--origins", "*", "--jwt-secret", JWT_SECRET, "--api-token", API_TOKEN,
      "--node-id", name, "--recovery-window", "2m", "--queue-retention", "24h", "--drain-timeout", "10s",
      // Storms of reconnects from 127.0.0.1: the per-IP limits (security-limits tests them) are off.
      "--connect-rate", "-1", "--handshake-rate", "-1", "--ip-event-rate", "-1", "--max-conns-per-ip", "-1", ...extra,
    ];
    const gw = await startGateway({ args });
    gw.name = name;
    gw.extraArgs = extra;
    this.gateways.push(gw);
    return gw;
  }

  async proxy(targets) {
    const p = await new Proxy().start();
    p.setTargets(targets);
    this.proxies.add(p);
    return p;
  }

  /** A recording client of user (not connected yet: call .socket.connect()). */
  client(url, user, auth = {}) {
    const c = new RecordingClient(url, user, auth);
    this.sockets.add(c.socket);
    return c;
  }

  async cleanup() {
    for (const s of this.sockets) s.disconnect();
    for (const p of this.proxies) await p.close().catch(() => {});
    await Promise.all(this.gateways.map((gw) => gw.stop(3000)));
    if (this.redis) await this.redis.stop();
  }

  logs() {
    return this.gateways.map((gw) => `--- ${gw.name} (${gw.url}) exit ${JSON.stringify(gw.exited)}:\n${gw.output().slice(-3000)}`).join("\n");
  }

  static async run(fn) {
    const fleet = new Fleet();
    try {
      await fn(fleet);
    } catch (err) {
      if (err && typeof err === "object") err.message += `\n\ngateway output:\n${fleet.logs()}`;
      throw err;
    } finally {
      await fleet.cleanup();
      if (process.env.GATEWAY_LOG) process.stderr.write(fleet.logs() + "\n");
    }
  }
}

/**
 * The official client with the reconnection settings of these tests,
 * recording every delivery of EVENT as {seq, attempt, offset}, each connect
 * (with socket.recovered and how many messages had arrived by then), each
 * roomcast:not-recovered, and any other event.
 */
class RecordingClient {
  constructor(url, user, auth) {
    this.user = user;
    this.msgs = [];
    this.connects = [];
    this.notRecovered = [];
    this.other = [];
    this.socket = io(url, {
      forceNew: true,
      autoConnect: false,
      transports: ["websocket"],
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      timeout: TIMEOUT,
      auth: { token: signJWT({ sub: user }, JWT_SECRET), ...auth },
    });
    const s = this.socket;
    s.on("connect", () => this.connects.push({ recovered: s.recovered, id: s.id, msgs: this.msgs.length }));
    s.on(EVENT, (data, offset, ...rest) => {
      // A durable message is identified by the user part of the offset
      // ("<user stream ID>~<broadcast log position>").
      offset = String(offset).split("~")[0];
      this.msgs.push({ seq: data?.seq, attempt: data?.attempt, offset, rest: rest.length });
    });
    s.on("roomcast:not-recovered", (info, offset) => this.notRecovered.push({ info, offset, msgs: this.msgs.length }));
    s.onAny((event) => {
      if (event !== EVENT && event !== "roomcast:not-recovered") this.other.push(event);
    });
  }

  /** Connects and waits for the first "connect". */
  async connect() {
    const n = this.connects.length;
    this.socket.connect();
    await until(() => this.connects.length > n, `${this.user} to connect`, TIMEOUT * 2);
  }

  /** Resolves once the de-duplicated deliveries number n. */
  async waitFor(n, timeout, what = `${n} messages`) {
    try {
      await until(() => dedupe(this.msgs).kept.length >= n, what, timeout);
    } catch (err) {
      const { kept } = dedupe(this.msgs);
      err.message += ` (have ${kept.length} after de-dup, ${this.msgs.length} delivered, last seq ${kept.at(-1)?.seq}, connects ${JSON.stringify(this.connects)})`;
      throw err;
    }
  }
}

/** POST /api/v1/emit of one durable message to user; resolves with its entry ID (200 only). */
async function emit(gw, user, data) {
  const res = await gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { users: [user], event: EVENT, args: [data] } });
  assert.equal(res.status, 200, `emit ${JSON.stringify(data)} via ${gw.name}: ${res.status} ${res.text}`);
  assert.equal(res.json?.ok, true, res.text);
  const id = res.json?.ids?.[user];
  assert.equal(typeof id, "string", `no entry ID for ${user}: ${res.text}`);
  parseOffset(id);
  return id;
}

/** Sends seqs from..to-1 one after the other; returns their IDs. */
async function emitRange(gw, user, from, to) {
  const ids = [];
  for (let i = from; i < to; i++) ids.push(await emit(gw, user, { seq: i }));
  return ids;
}

/** Asserts that the IDs the API returned increase (sent one after the other). */
function assertIncreasing(ids) {
  for (let i = 1; i < ids.length; i++) {
    assert.equal(cmpOffset(ids[i - 1], ids[i]), -1, `API ids not increasing at ${i}: ${ids[i - 1]} then ${ids[i]}`);
  }
}

/**
 * Asserts what a client received of seqs from..from+ids.length-1 (whose API
 * IDs are ids): every message carries the ID the API returned for it, after
 * de-duplication by offset the seqs are exactly those in order, and every
 * dropped delivery is a repeat of one already kept. Returns the number of
 * duplicates.
 */
function assertExactlyOnce(msgs, from, ids) {
  for (const m of msgs) {
    assert.equal(m.rest, 0, `seq ${m.seq}: extra arguments after the offset`);
    assert.ok(Number.isInteger(m.seq) && m.seq >= from && m.seq < from + ids.length, `unexpected message ${JSON.stringify(m)}`);
    assert.equal(m.offset, ids[m.seq - from], `seq ${m.seq}: offset ${m.offset}, the API returned ${ids[m.seq - from]}`);
  }
  const { kept, dropped } = dedupe(msgs);
  const seqs = kept.map((m) => m.seq);
  const want = range(from, from + ids.length);
  if (seqs.length !== want.length || seqs.some((s, i) => s !== want[i])) {
    const bad = seqs.findIndex((s, i) => s !== want[i]);
    assert.fail(`after de-dup: ${seqs.length} messages, want ${want.length}; first difference at ${bad}: got seq ${seqs[bad]}, want ${want[bad]}`);
  }
  const keptSeqs = new Set(seqs);
  for (const d of dropped) assert.ok(keptSeqs.has(d.seq), `dropped seq ${d.seq} was never kept`);
  return dropped.length;
}

async function readyz(gw) {
  try {
    const res = await fetch(gw.adminUrl + "/readyz", { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

// --- the tests ------------------------------------------------------------------

describe("durable delivery", { skip }, () => {
  test("chaos: node A killed (SIGKILL) a third into 3000 messages; the client recovers on C with every message once, in order", { timeout: 45000 }, (t) =>
    Fleet.run(async (fleet) => {
      const N = 3000;
      const KILL_AT = N / 3;
      await fleet.startRedis();
      const [A, B, C] = [await fleet.gateway("A"), await fleet.gateway("B"), await fleet.gateway("C")];
      const lb = await fleet.proxy([A]);
      const user = unique("chaos");
      const client = fleet.client(lb.url, user);
      await client.connect();
      assert.equal(client.socket.recovered, false);
      assert.ok(client.socket._pid, "no pid in the CONNECT reply: recovery is off");
      assert.equal(lb.accepted.get("A"), 1);

      const ids = [];
      const started = Date.now();
      for (let i = 0; i < N; i++) {
        if (i === KILL_AT) {
          A.child.kill("SIGKILL");
          lb.setTargets([C]);
          lb.drop("A");
        }
        ids.push(await emit(B, user, { seq: i }));
      }
      t.diagnostic(`sent ${N} in ${Date.now() - started} ms`);
      assert.equal((await A.exitPromise).signal, "SIGKILL");
      assertIncreasing(ids);

      await client.waitFor(N, 20000);
      await sleep(200); // anything more that was on its way
      const dups = assertExactlyOnce(client.msgs, 0, ids);
      t.diagnostic(`${client.msgs.length} delivered, ${dups} duplicates dropped by offset, connects ${JSON.stringify(client.connects.map((c) => c.recovered))}`);
      assert.ok(client.connects.length >= 2, `the client never reconnected: ${JSON.stringify(client.connects)}`);
      assert.ok((lb.accepted.get("C") || 0) >= 1, "the client did not reconnect through the proxy to C");
      for (const c of client.connects.slice(1)) assert.equal(c.recovered, true, `a reconnect was not recovered: ${JSON.stringify(client.connects)}`);
      assert.deepEqual(client.notRecovered, []);
      assert.deepEqual(client.other, []);
      assert.equal(client.socket._lastOffset.split("~")[0], ids[N - 1]); // "<user ID>~<log position>"
    }));

  test("rolling restart: every node SIGTERMed and started again under a steady durable stream; nothing lost, order kept", { timeout: 45000 }, (t) =>
    Fleet.run(async (fleet) => {
      await fleet.startRedis();
      const live = [await fleet.gateway("n1"), await fleet.gateway("n2"), await fleet.gateway("n3")];
      const lb = await fleet.proxy(live);
      const user = unique("rolling");
      const client = fleet.client(lb.url, user);
      await client.connect();

      // The sender: one message after the other, each to the next live node;
      // a request that fails is sent again (a new attempt) to another node.
      const accepted = []; // by seq: {id, attempt}
      const failed = new Set(); // attempts without a 200: they may or may not arrive
      let stop = false;
      let next = 0;
      let retries = 0;
      const reasons = new Map(); // why requests failed -> count
      const sender = (async () => {
        let rr = 0;
        for (let seq = 0; !stop; seq++) {
          const deadline = Date.now() + 20000;
          for (let k = 0; ; k++) {
            const attempt = `${seq}.${k}`;
            const gw = live[rr++ % live.length];
            let res;
            try {
              res = await gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { users: [user], event: EVENT, args: [{ seq, attempt }] } });
            } catch (err) {
              res = { status: 0, text: String(err) };
            }
            if (res.status === 200) {
              const id = res.json?.ids?.[user];
              assert.equal(typeof id, "string", res.text);
              accepted[seq] = { id, attempt };
              break;
            }
            failed.add(attempt);
            retries++;
            const why = `${gw.name}: ${res.status || res.text.slice(0, 80)}`;
            reasons.set(why, (reasons.get(why) || 0) + 1);
            if (Date.now() > deadline) throw new Error(`seq ${seq}: no node accepted it within 20 s (last: ${res.status} ${res.text})`);
            await sleep(20);
          }
          next = seq + 1;
          await sleep(2);
        }
      })();
      sender.catch(() => {}); // awaited below

      const exits = [];
      try {
        await until(() => next >= 200, "the stream to start", 10000);
        for (const name of ["n1", "n2", "n3"]) {
          const i = live.findIndex((gw) => gw.name === name);
          const old = live[i];
          const before = next;
          // The balancer and the sender go on using the draining node until it is
          // gone (refused connections are skipped, failed requests sent again).
          old.child.kill("SIGTERM");
          exits.push({ name, ...(await old.exitPromise) });
          live.splice(i, 1);
          lb.setTargets(live);
          const fresh = await fleet.gateway(name, old.extraArgs);
          live.splice(i, 0, fresh);
          lb.setTargets(live);
          await until(() => next >= before + 200, `the stream to go on after restarting ${name}`, 15000);
        }
      } finally {
        stop = true;
      }
      await sender;
      const N = next;
      t.diagnostic(`sent ${N} messages (${retries} failed attempts retried: ${JSON.stringify([...reasons])}), exits ${JSON.stringify(exits)}`);
      for (const e of exits) assert.deepEqual([e.name, e.code, e.signal], [e.name, 0, null], `${e.name} did not drain cleanly`);

      await client.waitFor(N, 20000);
      await sleep(200);
      // Every accepted message arrives with its ID, once after de-dup, in send order;
      // anything else delivered is an attempt whose request failed.
      const byId = new Map(accepted.map((a, seq) => [a.id, { seq, ...a }]));
      for (const m of client.msgs) {
        const a = byId.get(m.offset);
        if (a) assert.equal(m.attempt, a.attempt, `offset ${m.offset} carries attempt ${m.attempt}, the API gave it to ${a.attempt}`);
        else assert.ok(failed.has(m.attempt), `delivery ${JSON.stringify(m)} is no attempt the test made`);
      }
      const { kept, dropped } = dedupe(client.msgs);
      const got = kept.filter((m) => byId.has(m.offset)).map((m) => m.seq);
      const want = range(0, N);
      const bad = want.findIndex((s, i) => got[i] !== s);
      assert.ok(got.length === N && bad === -1, `after de-dup ${got.length} accepted messages, want ${N}; first difference at ${bad}: got ${got[bad]}`);
      const keptOffsets = new Set(kept.map((m) => m.offset));
      for (const d of dropped) assert.ok(keptOffsets.has(d.offset), `dropped ${JSON.stringify(d)} was never kept`);
      assertIncreasing(accepted.map((a) => a.id));
      t.diagnostic(`${client.msgs.length} delivered, ${dropped.length} duplicates, connects ${JSON.stringify(client.connects.map((c) => c.recovered))}, per node ${JSON.stringify([...lb.accepted])}`);
      assert.ok(client.connects.slice(1).some((c) => c.recovered), `never recovered: ${JSON.stringify(client.connects)}`);
      assert.deepEqual(client.notRecovered, []);
      assert.deepEqual(client.other, []);
    }));

  test("auth.offset: a fresh client on a third node gets exactly the messages after the offset, then live ones", { timeout: 20000 }, () =>
    Fleet.run(async (fleet) => {
      await fleet.startRedis();
      const [A, B, C] = [await fleet.gateway("A"), await fleet.gateway("B"), await fleet.gateway("C")];
      const user = unique("offset");
      const K = 4;

      const first = fleet.client(A.url, user);
      await first.connect();
      const ids = await emitRange(B, user, 0, 10);
      await first.waitFor(10, TIMEOUT);
      assertExactlyOnce(first.msgs, 0, ids);
      const offset = first.msgs[K].offset;
      assert.equal(offset, ids[K]);
      first.socket.disconnect();

      ids.push(...(await emitRange(B, user, 10, 20)));
      // Another user's messages must not leak into the replay.
      await emit(B, unique("someone-else"), { seq: -1 });

      const second = fleet.client(C.url, user, { offset });
      await second.connect();
      assert.equal(second.connects[0].msgs, 20 - (K + 1), `at the CONNECT, ${second.connects[0].msgs} messages replayed, want ${20 - (K + 1)} (the backlog comes first)`);
      ids.push(...(await emitRange(B, user, 20, 25)));
      await second.waitFor(25 - (K + 1), TIMEOUT);
      await sleep(200);
      assertExactlyOnce(second.msgs, K + 1, ids.slice(K + 1));
      assert.equal(second.msgs.length, 25 - (K + 1), `duplicates: ${JSON.stringify(second.msgs.map((m) => m.seq))}`);
      assert.deepEqual(second.notRecovered, []);
      assert.deepEqual(second.other, []);
      assert.equal(first.msgs.length, 10, "the disconnected first client got more");
    }));

  test("queue overflow: with --queue-maxlen 10, a full queue refuses (429) instead of trimming, and the client recovers its whole history", { timeout: 20000 }, () =>
    Fleet.run(async (fleet) => {
      await fleet.startRedis();
      const A = await fleet.gateway("A", ["--queue-maxlen", "10"]);
      const B = await fleet.gateway("B", ["--queue-maxlen", "10"]);
      const lb = await fleet.proxy([A]);
      const user = unique("overflow");
      const client = fleet.client(lb.url, user);
      await client.connect();
      const first = await emit(B, user, { seq: 0 });
      await client.waitFor(1, TIMEOUT);
      assert.equal(client.msgs[0].offset, first);

      lb.pause(); // the network cut: the client keeps trying to reconnect
      await until(() => !client.socket.connected, "the client to notice the cut");
      const stored = await emitRange(B, user, 1, 10); // the queue now holds 10
      for (let i = 10; i < 20; i++) {
        const res = await B.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { users: [user], event: EVENT, args: [{ seq: i }] } });
        assert.equal(res.status, 429, `emit to a full queue: ${res.status} ${res.text}`);
        assert.equal(res.json?.error?.code, "queue_full", res.text);
        assert.deepEqual(res.json?.ids, {}, res.text);
        assert.deepEqual(res.json?.refused, { [user]: "queue_full" }, res.text);
      }
      lb.setTargets([B]);
      lb.resume();
      await until(() => client.connects.length >= 2 && client.msgs.length >= 10, "the reconnect and the replay", TIMEOUT * 2).catch((err) => {
        err.message += ` (connects ${JSON.stringify(client.connects)}, not-recovered ${JSON.stringify(client.notRecovered)}, ${client.msgs.length} messages)`;
        throw err;
      });
      await sleep(200);
      assert.equal(client.connects[1].recovered, true, "nothing was trimmed: the session recovers");
      assert.deepEqual(client.notRecovered, []);
      assert.deepEqual(client.msgs.map((m) => m.seq), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "the whole history, and none of the refused");
      assert.deepEqual(client.msgs.slice(1).map((m) => m.offset), stored);
      assert.equal(client.connects.length, 2);
      assert.deepEqual(client.other, []);
    }));

  test("Redis with AOF, SIGKILLed and restarted: all 200 accepted messages are recovered, in order", { timeout: 30000 }, () =>
    Fleet.run(async (fleet) => {
      const redis = await fleet.startRedis({ aof: true });
      const A = await fleet.gateway("A");
      const lb = await fleet.proxy([A]);
      const user = unique("aof");
      const client = fleet.client(lb.url, user);
      await client.connect();
      const ids = [await emit(A, user, { seq: 0 })];
      await client.waitFor(1, TIMEOUT);

      lb.pause();
      await until(() => !client.socket.connected, "the client to notice the cut");
      ids.push(...(await emitRange(A, user, 1, 201)));
      assertIncreasing(ids);

      await redis.restart(); // SIGKILL, then a new redis-server on the same port and dir
      await until(async () => (await readyz(A)) === 200, "the gateway's /readyz to be 200 again", 20000);
      lb.resume();
      await client.waitFor(201, 20000);
      await sleep(200);
      assertExactlyOnce(client.msgs, 0, ids);
      assert.equal(client.msgs.length, 201, "duplicates");
      assert.equal(client.connects.length, 2, JSON.stringify(client.connects));
      assert.equal(client.connects[1].recovered, true, "not recovered after the Redis restart");
      assert.equal(client.connects[1].msgs, 201, "the 200 missed messages come before the CONNECT reply");
      assert.deepEqual(client.notRecovered, []);

      // And the stream goes on live.
      ids.push(await emit(A, user, { seq: 201 }));
      await client.waitFor(202, TIMEOUT);
      assertExactlyOnce(client.msgs, 0, ids);
    }));
});
