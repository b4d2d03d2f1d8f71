// Redis restarted under a publish stream (issue 16, point 1), with the
// official socket.io-client against two gateway binaries on one
// redis-server: three members on node B (each in the room, each a user that
// gets durable messages), a publisher on node A publishing to the room every
// 10 ms with acks, and API emits to the room and to the members' users
// (durable) on A. redis-server is SIGKILLed after about a second and
// restarted on the same port 0.7 s later; publishing goes on through the
// outage and after Redis returns.
//
// The promise checked: a success reply (ack ok, API 200) is never left
// silently undelivered. Each member receives every acked message, in order
// and without duplicates — or is sent to recovery and told it was not
// recovered (roomcast:not-recovered, socket.recovered false), after which it
// rejoins and receives every message acked from then on. While Redis is
// down a publish is refused (`unavailable`, API 503).
//
// - Redis without persistence loses the log and the user streams: the nodes
//   cannot fill what their sockets missed and must tell them.
// - Redis with AOF (appendfsync always) loses nothing acked: every member
//   receives everything, with no disconnect.
// - Both: what is acked in the first moments after Redis returns (issue 16's
//   variant) is delivered too.
//
// The test prints how long after Redis answered again the first message
// published after it reached a member on B, and the worst delivery latency
// of the messages published after it (how long live delivery needs to be
// gap-free again). Skipped when redis-server is not installed
// (INTEROP_REQUIRE_REDIS=1 fails instead).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import { io } from "socket.io-client";
import { TIMEOUT, redisServerBin, signJWT, startGateway, startRedis, until } from "./gateway.mjs";

const skip = !existsSync(redisServerBin) && process.env.INTEROP_REQUIRE_REDIS !== "1"
  ? `redis-server not found at ${redisServerBin}`
  : false;

const SECRET = "s";
const TOKEN = "t";
const ROOM = "live";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A member: records what it receives, rejoins when it is not recovered. */
class Member {
  constructor(url, user) {
    this.user = user;
    this.got = { m: [], api: [], dm: [] }; // [value, receivedAt]
    this.connects = []; // {at, recovered}
    this.notRecovered = 0;
    this.fresh = [0]; // times from which the member is in the room on a fresh session
    this.socket = io(url, {
      forceNew: true,
      transports: ["websocket"],
      reconnectionDelay: 100,
      reconnectionDelayMax: 300,
      timeout: TIMEOUT,
      auth: { token: signJWT({ sub: user, join: ["*"], publish: ["*"] }, SECRET) },
    });
    this.socket.on("connect", () => {
      this.connects.push({ at: Date.now(), recovered: this.socket.recovered });
      if (this.connects.length > 1 && !this.socket.recovered) this.rejoin();
    });
    this.socket.on("roomcast:not-recovered", () => this.notRecovered++);
    this.socket.onAny((event, ...args) => {
      if (this.got[event]) this.got[event].push([args[0], Date.now()]);
    });
  }
  async join() {
    const ack = await this.socket.timeout(TIMEOUT).emitWithAck("join", ROOM);
    assert.equal(ack?.ok, true, `join: ${JSON.stringify(ack)}`);
  }
  rejoin() {
    // A fresh session has no rooms: the app rejoins. Messages sent after
    // the join was acked must all arrive.
    this.join().then(() => this.fresh.push(Date.now()), () => {});
  }
  told() {
    return this.notRecovered > 0 || this.connects.slice(1).some((c) => !c.recovered);
  }
}

/** Publishes on a timer and records each send and its answer. */
function publisher(a, pub) {
  const sent = { m: [], api: [], dm: [] }; // {n, at, ok, code, answeredAt}
  let stop = false;
  let n = 0;
  const publish = () => {
    const rec = { n: ++n, at: Date.now(), ok: false };
    sent.m.push(rec);
    pub.socket.timeout(TIMEOUT).emitWithAck("publish", { room: ROOM, event: "m", data: rec.n }).then(
      (ack) => Object.assign(rec, { ok: ack?.ok === true, code: ack?.error?.code ?? ack?.code, answeredAt: Date.now() }),
      () => Object.assign(rec, { code: "timeout", answeredAt: Date.now() }),
    );
  };
  const api = (kind, body) => {
    const rec = { n: ++n, at: Date.now(), ok: false };
    sent[kind].push(rec);
    return a.api("POST", "/api/v1/emit", { token: TOKEN, body: { ...body, event: kind, args: [rec.n] } }).then(
      (res) => Object.assign(rec, { ok: res.status === 200, code: res.status, answeredAt: Date.now() }),
      () => Object.assign(rec, { code: "error", answeredAt: Date.now() }),
    );
  };
  const busy = { api: null, dm: null };
  const loop = (async () => {
    for (let i = 0; !stop; i++) {
      publish();
      // Each kind of API emit is sent after the previous one was answered:
      // their order is then defined (concurrent requests have none).
      if (i % 5 === 0 && !busy.api) busy.api = api("api", { rooms: [ROOM] }).then(() => (busy.api = null));
      if (i % 5 === 2 && !busy.dm) busy.dm = api("dm", { users: ["m0", "m1", "m2"] }).then(() => (busy.dm = null));
      await sleep(10);
    }
  })();
  return {
    sent,
    async stop() {
      stop = true;
      await loop;
      await Promise.all([busy.api, busy.dm]);
      await until(() => sent.m.every((r) => r.answeredAt), "every publish answered", TIMEOUT * 2);
    },
  };
}

async function scenario({ aof }) {
  const redis = await startRedis({ aof });
  const args = ["--origins", "*", "--jwt-secret", SECRET, "--api-token", TOKEN, "--redis", redis.url];
  const a = await startGateway({ args: [...args, "--node-id", "a"] });
  const b = await startGateway({ args: [...args, "--node-id", "b"] });
  const members = ["m0", "m1", "m2"].map((u) => new Member(b.url, u));
  const pub = new Member(a.url, "pub");
  try {
    await until(() => members.every((m) => m.connects.length === 1) && pub.connects.length === 1, "connected");
    await Promise.all(members.map((m) => m.join()));
    const p = publisher(a, pub);
    await sleep(1000);
    await redis.kill();
    const killedAt = Date.now();
    await sleep(700);
    const restartAt = Date.now();
    await redis.restart();
    const upAt = Date.now(); // redis-server answers PING
    await sleep(2000);
    await p.stop();
    await sleep(1500); // deliveries in flight, recoveries

    const { sent } = p;
    // Nothing is acked while Redis is down: a send made during the outage
    // is answered ok only after Redis answered again (go-redis retries it
    // into the returned Redis: it is in the log), else refused. A longer
    // outage is refused outright (gateway TestRedisOutageIsLoud).
    const all = [...sent.m, ...sent.api, ...sent.dm];
    for (const r of all.filter((r) => r.ok && r.at > killedAt)) {
      assert.ok(r.answeredAt >= restartAt, `#${r.n} sent during the outage was acked ok before Redis was restarted`);
    }
    for (const r of all.filter((r) => !r.ok)) {
      assert.ok([503, "unavailable", "timeout"].includes(r.code), `#${r.n} answered ${r.code}`);
    }
    // The variant: publishes acked right after Redis returns. Make
    // sure the run has some. Without persistence the nodes also send every
    // socket to recovery, the publisher's included (the log and the user
    // streams are gone), and publishes sent meanwhile may be refused: on a
    // loaded machine (2 shared cores, load ~30) the first ok came later
    // than 300 ms after Redis returned in 3 of 5 runs.
    const early = aof ? 300 : 1000;
    const earlyAfter = sent.m.filter((r) => r.ok && r.at >= upAt && r.at < upAt + early);
    const firstOk = sent.m.find((r) => r.ok && r.at >= upAt);
    assert.ok(earlyAfter.length > 0, `no publish acked in the first ${early} ms after Redis returned ` +
      `(first acked one sent ${firstOk ? firstOk.at - upAt : "-"} ms after; publisher connects ${JSON.stringify(pub.connects.map((c) => ({ at: c.at - upAt, recovered: c.recovered })))})`);

    const report = { aof, firstAfter: [], worstAfter: 0 };
    for (const m of members) {
      for (const kind of ["m", "api", "dm"]) {
        const values = m.got[kind].map(([v]) => v);
        for (let i = 1; i < values.length; i++) {
          assert.ok(values[i - 1] < values[i], `${m.user} ${kind}: out of order or duplicate: ${values[i - 1]} then ${values[i]}`);
        }
        const have = new Set(values);
        const acked = sent[kind].filter((r) => r.ok);
        const missing = acked.filter((r) => !have.has(r.n));
        if (!m.told()) {
          assert.deepEqual(missing.map((r) => r.n), [], `${m.user} ${kind}: acked, never delivered, and the socket was not told (connects ${JSON.stringify(m.connects)})`);
        } else {
          // Told: from its last fresh join on, everything acked arrives.
          const since = m.fresh[m.fresh.length - 1];
          const late = missing.filter((r) => r.at > since + 50);
          assert.deepEqual(late.map((r) => r.n), [], `${m.user} ${kind}: acked after the member rejoined (at ${since}), never delivered`);
        }
        if (aof) {
          assert.deepEqual(missing.map((r) => r.n), [], `${m.user} ${kind}: AOF Redis, acked and lost`);
          assert.equal(m.told(), false, `${m.user}: AOF Redis, yet sent to recovery`);
        }
        for (const r of acked) {
          if (r.at < upAt) continue;
          const got = m.got[kind].find(([v]) => v === r.n);
          if (got) report.worstAfter = Math.max(report.worstAfter, got[1] - r.at);
        }
      }
      const first = m.got.m.find(([v]) => sent.m.find((r) => r.n === v)?.at >= upAt);
      if (first) report.firstAfter.push(first[1] - upAt);
    }
    report.told = members.map((m) => m.told());
    report.firstAck = firstOk ? firstOk.at - upAt : null;
    report.publisherConnects = pub.connects.length;
    report.refused = all.filter((r) => !r.ok).length;
    report.acked = Object.fromEntries(Object.entries(sent).map(([k, v]) => [k, v.filter((r) => r.ok).length + "/" + v.length]));
    console.log(`# redis restart ${JSON.stringify(report)}`);
    return report;
  } finally {
    for (const m of [...members, pub]) m.socket.disconnect();
    await Promise.all([a.stop(), b.stop()]);
    await redis.stop();
  }
}

describe("Redis restarted under a publish stream", { skip }, () => {
  test("without persistence: every member gets every acked message or is told it was not recovered", { timeout: 30000 }, async () => {
    await scenario({ aof: false });
  });
  test("with AOF (appendfsync always): nothing acked is lost, in order, no duplicates, no disconnect", { timeout: 30000 }, async () => {
    await scenario({ aof: true });
  });
});
