// Acked joins and leaves are in the recovered session (issue 16, point 2),
// with the official socket.io-client against real binaries and a real
// redis-server: a client whose `join`/`leave` was answered `ok` on node B,
// which is then SIGKILLed at once, recovers on node A (`socket.recovered`
// true) in exactly the rooms it was acknowledged — it gets the next message
// to a room it joined and none of a room it left. Also in a reconnect storm
// of 200 clients, each of which joined a room right before the kill. And a
// 200 from the HTTP API's sockets/join on node A for clients on node B means
// B stored their sessions with the room: B SIGKILLed as the 200 arrives,
// they recover on A in it.
//
// The clients reach the gateways through a small TCP proxy in this file (a
// stand-in load balancer) that is moved from B to A when B dies. Skipped when
// redis-server is not installed (set INTEROP_REQUIRE_REDIS=1 to fail instead).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import net from "node:net";
import { describe, test } from "node:test";
import { io } from "socket.io-client";
import { TIMEOUT, freePort, redisServerBin, signJWT, startGateway, startRedis, unique, until } from "./gateway.mjs";

const skip = !existsSync(redisServerBin) && process.env.INTEROP_REQUIRE_REDIS !== "1"
  ? `redis-server not found at ${redisServerBin} (apt-get install -y redis-server)`
  : false;
if (skip) console.log(`# skipping the acked-rooms interop tests: ${skip}`);

const JWT_SECRET = unique("jwt-secret");
const API_TOKEN = unique("api-token");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP proxy that forwards every new connection to its one current target. */
class Proxy {
  constructor(target) {
    this.target = target;
    this.pairs = new Set();
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

  #forward(client) {
    client.on("error", () => {});
    const upstream = net.connect(this.target.port, "127.0.0.1");
    const pair = { client, upstream };
    this.pairs.add(pair);
    const close = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async close() {
    for (const p of [...this.pairs]) {
      p.client.destroy();
      p.upstream.destroy();
    }
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Redis, gateways A and B, a proxy to B and the clients, all stopped at the end. */
async function withFleet(fn) {
  const redis = await startRedis();
  const gateways = [];
  const sockets = new Set();
  const gateway = async (name) => {
    const gw = await startGateway({
      args: [
        "--redis", redis.url, "--origins", "*", "--jwt-secret", JWT_SECRET, "--api-token", API_TOKEN,
        "--node-id", name, "--recovery-window", "2m",
        // Storms of reconnects from 127.0.0.1: the per-IP limits are off.
        "--connect-rate", "-1", "--handshake-rate", "-1", "--ip-event-rate", "-1", "--max-conns-per-ip", "-1",
      ],
    });
    gw.name = name;
    gateways.push(gw);
    return gw;
  };
  const A = await gateway("a");
  const B = await gateway("b");
  const lb = await new Proxy(B).start();
  const client = (user) => {
    const s = io(lb.url, {
      forceNew: true,
      autoConnect: false,
      transports: ["websocket"],
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      timeout: TIMEOUT,
      auth: { token: signJWT({ sub: user, join: ["*"], publish: ["*"] }, JWT_SECRET) },
    });
    sockets.add(s);
    s.connects = [];
    s.got = [];
    s.on("connect", () => s.connects.push({ recovered: s.recovered, id: s.id }));
    s.on("m", (room) => s.got.push(room));
    return s;
  };
  try {
    await fn({ A, B, lb, client });
  } catch (err) {
    if (err && typeof err === "object") {
      err.message += "\n\ngateway output:\n" + gateways.map((gw) => `--- ${gw.name}: ${gw.output().slice(-2000)}`).join("\n");
    }
    throw err;
  } finally {
    for (const s of sockets) s.disconnect();
    await lb.close().catch(() => {});
    await Promise.all(gateways.map((gw) => gw.stop(3000)));
    await redis.stop();
  }
}

const ack = (s, event, room) => s.timeout(TIMEOUT * 2).emitWithAck(event, room);

/** B dies with SIGKILL at once; the proxy sends every new connection to A. */
async function killB({ A, B, lb }) {
  B.child.kill("SIGKILL");
  lb.target = A;
  await B.exitPromise;
}

/** Publishes to room through A's API (a live broadcast). */
async function publish(A, room) {
  const res = await A.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { rooms: [room], event: "m", args: [room] } });
  assert.equal(res.status, 200, `emit to ${room}: ${res.status} ${res.text}`);
}

describe("acked joins and leaves survive a node crash", { skip }, () => {
  test("10 clients: join late, leave gone, B SIGKILLed, recovered on A in late and not in gone", async () => {
    await withFleet(async (fleet) => {
      const { A, client } = fleet;
      const late = unique("late");
      const gone = unique("gone");
      const clients = Array.from({ length: 10 }, (_, i) => client(unique(`u${i}`)));
      await Promise.all(clients.map(async (s) => {
        s.connect();
        await until(() => s.connects.length === 1, "connect", TIMEOUT * 2);
        assert.deepEqual(await ack(s, "join", gone), { ok: true });
      }));
      await sleep(300); // gone is in every stored session, however it gets there
      await Promise.all(clients.map(async (s) => {
        assert.deepEqual(await ack(s, "join", late), { ok: true });
        assert.deepEqual(await ack(s, "leave", gone), { ok: true });
      }));
      await killB(fleet);
      await until(() => clients.every((s) => s.connects.length === 2), "10 reconnects to A", TIMEOUT * 3);
      assert.deepEqual(clients.map((s) => s.connects[1].recovered), clients.map(() => true), "all recovered");
      await publish(A, gone);
      await publish(A, late);
      await until(() => clients.every((s) => s.got.includes(late)), "the message to late on every client", TIMEOUT * 2)
        .catch((err) => {
          err.message += `: ${clients.filter((s) => !s.got.includes(late)).length} of 10 not in ${late}`;
          throw err;
        });
      const inGone = clients.filter((s) => s.got.includes(gone)).length;
      assert.equal(inGone, 0, `${inGone} of 10 clients still in the room they left`);
    });
  });

  test("API sockets/join on A for 200 clients on B: B SIGKILLed as the 200 arrives, recovered on A in the room", async () => {
    await withFleet(async (fleet) => {
      const { A, client } = fleet;
      const room = unique("api-joined");
      const clients = Array.from({ length: 200 }, (_, i) => client(unique(`j${i}`)));
      await Promise.all(clients.map(async (s) => {
        s.connect();
        await until(() => s.connects.length === 1, "connect", TIMEOUT * 4);
      }));
      // A 200 means B applied the join and stored every session with it.
      const res = await A.api("POST", "/api/v1/sockets/join", {
        token: API_TOKEN, body: { sockets: clients.map((s) => s.id), join: [room] },
      });
      await killB(fleet);
      assert.equal(res.status, 200, `sockets/join: ${res.status} ${res.text}`);
      await until(() => clients.every((s) => s.connects.length === 2), "200 reconnects to A", TIMEOUT * 6);
      const notRecovered = clients.filter((s) => !s.connects[1].recovered).length;
      assert.equal(notRecovered, 0, `${notRecovered} of 200 not recovered`);
      await publish(A, room);
      await until(() => clients.every((s) => s.got.includes(room)), "the message to the room on every client", TIMEOUT * 2)
        .catch((err) => {
          err.message += `: ${clients.filter((s) => !s.got.includes(room)).length} of 200 recovered without the room the API's 200 reported`;
          throw err;
        });
    });
  });

  test("a 200-client reconnect storm: each joined a room right before the kill", async () => {
    await withFleet(async (fleet) => {
      const { A, client } = fleet;
      const room = unique("storm");
      const clients = Array.from({ length: 200 }, (_, i) => client(unique(`s${i}`)));
      await Promise.all(clients.map(async (s) => {
        s.connect();
        await until(() => s.connects.length === 1, "connect", TIMEOUT * 4);
      }));
      await Promise.all(clients.map(async (s) => assert.deepEqual(await ack(s, "join", room), { ok: true })));
      await killB(fleet);
      await until(() => clients.every((s) => s.connects.length === 2), "200 reconnects to A", TIMEOUT * 6)
        .catch((err) => {
          err.message += `: ${clients.filter((s) => s.connects.length < 2).length} not back`;
          throw err;
        });
      const notRecovered = clients.filter((s) => !s.connects[1].recovered).length;
      assert.equal(notRecovered, 0, `${notRecovered} of 200 not recovered`);
      await publish(A, room);
      await until(() => clients.every((s) => s.got.includes(room)), "the message to the room on every client", TIMEOUT * 2)
        .catch((err) => {
          err.message += `: ${clients.filter((s) => !s.got.includes(room)).length} of 200 recovered without the room`;
          throw err;
        });
    });
  });
});
