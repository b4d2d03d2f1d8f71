// The official client through HAProxy round-robin (deploy/haproxy.cfg as
// shipped: no stickiness) over three gateways sharing Redis: a polling
// request that lands on a node other than its session's is forwarded to the
// owner, and a websocket upgrade that lands there takes the session over.
// Polling-only and default transports (polling, then the upgrade);
// connect, acks, binary, rooms, the upgrade moving sessions with nothing
// lost, 1000 messages in order, and a node killed mid-session.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { connected, freePort, nextEvent, payload, request, startGateway, startRedis, TIMEOUT, unique, until } from "./gateway.mjs";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const API_TOKEN = "polling-cluster-token";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let redis;
const nodes = [];
let lb; // {url, stop()}
const clients = new Set();

/** Starts haproxy with deploy/haproxy.cfg in front of the three nodes. */
async function startHAProxy() {
  const port = await freePort();
  const stats = await freePort();
  const env = { ...process.env, LB_BIND: `127.0.0.1:${port}`, LB_STATS_BIND: `127.0.0.1:${stats}` };
  nodes.forEach((n, i) => {
    env[`LB_GATEWAY_${i + 1}`] = `127.0.0.1:${n.port}`;
    env[`LB_GATEWAY_${i + 1}_ADMIN`] = String(n.adminPort);
  });
  const child = spawn(process.env.HAPROXY || "haproxy", ["-f", path.join(repoRoot, "deploy/haproxy.cfg")], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (c) => (log += c));
  child.stderr.on("data", (c) => (log += c));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const url = `http://127.0.0.1:${port}`;
  // Ready once each node has answered a handshake through it.
  const seen = new Set();
  const deadline = Date.now() + 15000;
  while (seen.size < nodes.length) {
    if (Date.now() > deadline) throw new Error(`haproxy did not reach every node (saw ${[...seen]}):\n${log}`);
    try {
      const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(1000) });
      await res.text();
      if (res.status === 200) seen.add(res.headers.get("x-roomcast-server"));
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  return {
    url,
    log: () => log,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

before(async () => {
  redis = await startRedis();
  const args = ["--redis", redis.url, "--origins", "*", "--allow-anonymous", "--api-token", API_TOKEN,
    "--event-rate", "-1", "--ip-event-rate", "-1", "--connect-rate", "-1", "--handshake-rate", "-1",
    "--trusted-proxies", "127.0.0.1/32"];
  for (let i = 0; i < 3; i++) nodes.push(await startGateway({ args: [...args, "--node-id", `node-${i + 1}`] }));
  lb = await startHAProxy();
});

after(async () => {
  for (const s of clients) s.disconnect();
  if (lb) await lb.stop();
  for (const n of nodes) await n.stop();
  if (redis) await redis.stop();
});

/** A client through the load balancer (reconnecting as the official client does by default). */
function client(transports, options = {}) {
  const s = io(lb.url, {
    forceNew: true,
    timeout: TIMEOUT,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    ...(transports ? { transports } : {}),
    ...options,
  });
  clients.add(s);
  return s;
}

async function connect(transports) {
  const s = client(transports, { autoConnect: false });
  await connected(s);
  return s;
}

/** The node (by --node-id) holding socket id sid, from the cluster-wide API. */
async function nodeOf(sid) {
  const res = await fetch(`${lb.url}/api/v1/sockets`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
  const body = await res.json();
  return body.sockets.find((s) => s.id === sid)?.node;
}

const ok = (ack) => assert.equal(ack?.ok, true, JSON.stringify(ack));

/** Sessions taken over on upgrade, summed over the nodes still up (roomcast_handovers_total{direction="in"}). */
async function handoversIn() {
  let sum = 0;
  for (const n of nodes) {
    if (n.child.exitCode !== null || n.child.signalCode !== null) continue;
    const text = await (await fetch(`${n.adminUrl}/metrics`)).text();
    const m = text.match(/^roomcast_handovers_total\{direction="in"\} (\d+)/m);
    sum += m ? Number(m[1]) : 0;
  }
  return sum;
}

for (const [name, transports] of [["polling only", ["polling"]], ["default transports", null]]) {
  describe(`round-robin, ${name}`, () => {
    test("connect, acks, rooms and binary across nodes", async () => {
      const room = unique("room");
      const a = await connect(transports);
      const b = await connect(transports);
      ok(await request(a, "join", room)); // a client's ack, answered by the owner
      const got = nextEvent(a, "bin");
      ok(await request(b, "publish", { room, event: "bin", data: { blob: Buffer.from([0, 1, 2, 255]) } }));
      const args = payload(a, await got);
      assert.deepEqual([...args[0].blob], [0, 1, 2, 255]);
      // The ack callback of a plain event: answered with an error ack, never silence.
      const answer = await a.timeout(TIMEOUT).emitWithAck("no-such-handler", 1);
      assert.equal(answer.error.code, "unknown_event");
      a.disconnect();
      b.disconnect();
    });

    if (!transports) {
      test("the upgrade moves the session to the node that holds its websocket, losing nothing", async (t) => {
        const room = unique("moving");
        const before = await handoversIn();
        // A polling-only publisher publishes all along, one message every
        // few milliseconds, while the receivers connect, join (their join
        // goes with the CONNECT, before the upgrade probe) and upgrade.
        const tx = await connect(["polling"]);
        let published = 0;
        let publishing = true;
        const pub = (async () => {
          while (publishing) {
            ok(await request(tx, "publish", { room, event: "n", data: published }));
            published++;
            await sleep(2);
          }
        })();
        const rxs = [];
        for (let i = 0; i < 9; i++) {
          const s = client(null, { autoConnect: false });
          const r = { s, seen: [], drops: [] };
          s.on("n", (...args) => r.seen.push(payload(s, args)[0]));
          s.on("disconnect", (reason) => r.drops.push(reason));
          const joined = request(s, "join", room); // buffered until connected
          await connected(s);
          r.id = s.id;
          ok(await joined);
          // Every message published from here on is due (the one in
          // flight now may have been handled before the join).
          r.from = published + 1;
          rxs.push(r);
        }
        await until(() => rxs.every((r) => r.s.io.engine.transport.name === "websocket"), "every receiver upgraded", 10000);
        await sleep(200);
        publishing = false;
        await pub;
        const last = published - 1;
        await until(() => rxs.every((r) => r.seen.at(-1) === last), "the last message everywhere", 20000);
        const moved = (await handoversIn()) - before;
        for (const r of rxs) {
          const first = r.seen[0];
          assert.ok(first <= r.from, `first message ${first}, but ${r.from} was published after the join`);
          assert.deepEqual(r.seen, Array.from({ length: last - first + 1 }, (_, i) => first + i), "every message once, in order");
          assert.deepEqual(r.drops, [], "no disconnect while the session moved");
          assert.equal(r.s.id, r.id, "the socket keeps its id");
          ok(await request(r.s, "join", unique("after-upgrade")));
          r.s.disconnect();
        }
        // Round-robin over three nodes: about two upgrades in three land on
        // a node that does not hold the session, which takes it over.
        assert.ok(moved >= 1, `sessions taken over: ${moved} of ${rxs.length}`);
        t.diagnostic(`sessions taken over: ${moved} of ${rxs.length}; ${published} messages published`);
        tx.disconnect();
      });
    }

    test("1000 messages in order, none lost", async () => {
      const room = unique("seq");
      const rx = await connect(transports);
      const tx = await connect(transports);
      ok(await request(rx, "join", room));
      const seen = [];
      rx.on("n", (...args) => seen.push(payload(rx, args)[0]));
      const acks = [];
      for (let i = 0; i < 1000; i++) acks.push(request(tx, "publish", { room, event: "n", data: i }));
      for (const ack of await Promise.all(acks)) ok(ack);
      await until(() => seen.length >= 1000, "1000 messages", 20000);
      assert.deepEqual(seen, Array.from({ length: 1000 }, (_, i) => i));
      rx.disconnect();
      tx.disconnect();
    });
  });
}

describe("a node killed mid-session", () => {
  test("the polling client reconnects through the others and recovers", async () => {
    const room = unique("survive");
    const s = client(["polling"], { autoConnect: false });
    await connected(s);
    ok(await request(s, "join", room));
    const owner = await nodeOf(s.id);
    assert.ok(owner, "the socket is listed by the API");
    const victim = nodes.find((n) => n.args.includes(owner));
    const oldId = s.id;
    victim.child.kill("SIGKILL");
    await victim.exitPromise;
    // The client's next request fails (refused, or Session ID unknown from
    // a node that cannot reach the owner): it reconnects and recovers.
    const recon = new Promise((resolve) => s.once("connect", resolve));
    await Promise.race([recon, sleep(15000).then(() => assert.fail("no reconnect within 15 s"))]);
    assert.equal(s.recovered, true, "the session is recovered on another node");
    assert.equal(s.id, oldId);
    const got = nextEvent(s, "after");
    const other = await connect(["polling"]);
    ok(await request(other, "publish", { room, event: "after", data: "still in the room" }));
    assert.equal(payload(s, await got)[0], "still in the room");
    assert.notEqual(await nodeOf(s.id), owner);
    other.disconnect();
    s.disconnect();
  });
});
