// Presence at cluster scale with the official client, three gateway nodes on
// one real redis-server: join/leave announcements once per user across nodes,
// a recovered socket that does not flap, and a node killed with SIGKILL whose
// sockets are swept (leave events to the other members, presence right
// again, one disconnect per lost socket in the <prefix>:events stream).
// Skipped when redis-server is not installed.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { io } from "socket.io-client";
import { TIMEOUT, connected, nextEvent, payload, record, redisServerBin, request, signJWT, startGateway, startRedis, unique, until } from "./gateway.mjs";

const skip = existsSync(redisServerBin) ? false : `redis-server not found at ${redisServerBin}`;
if (skip) console.log(`# skipping the presence interop tests: ${skip}`);

const SECRET = "presence-" + unique("s");
const API_TOKEN = "api-" + unique("t");
const PREFIX = unique("pres");
const ok = (ack) => assert.equal(ack && ack.ok, true, `want {ok:true}, got ${JSON.stringify(ack)}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe("presence across three nodes", { skip }, () => {
  let redis, rc;
  const nodes = [];
  const sockets = new Set();
  before(async () => {
    redis = await startRedis();
    rc = createClient({ url: redis.url });
    await rc.connect();
    for (const id of ["n1", "n2", "n3"]) {
      nodes.push(await startGateway({
        args: ["--redis", redis.url, "--redis-prefix", PREFIX, "--node-id", id, "--origins", "*", "--jwt-secret", SECRET,
          "--api-token", API_TOKEN, "--presence-rooms", "room:*"],
      }));
    }
  });
  after(async () => {
    for (const s of sockets) s.disconnect();
    for (const n of nodes) await n.stop();
    await rc?.quit().catch(() => {});
    await redis?.stop();
  });

  /** A connected client of `user` on node `n`. */
  const client = async (n, user, options = {}) => {
    const s = io(nodes[n].url, {
      forceNew: true, reconnection: false, autoConnect: false, timeout: TIMEOUT, transports: ["websocket"],
      auth: { token: signJWT({ sub: user, name: user.toUpperCase(), join: ["room:*"] }, SECRET) }, ...options,
    });
    sockets.add(s);
    return connected(s);
  };
  const joins = (s) => record(s, "roomcast:join");
  const leaves = (s) => record(s, "roomcast:leave");
  const users = (s, rec) => rec.events.map((args) => payload(s, args)[0].user);

  test("a user's first join and last leave are announced once, wherever its sockets are", async () => {
    const room = unique("room:a");
    const alice = await client(0, "alice");
    ok(await request(alice, "join", room));
    const j = joins(alice);
    const l = leaves(alice);
    const bob2 = await client(1, "bob");
    const bob3 = await client(2, "bob");
    const carol = await client(2, "carol");
    ok(await request(bob2, "join", room));
    ok(await request(bob3, "join", room));
    ok(await request(carol, "join", room));
    await until(() => j.events.length >= 2, "two join events");
    const bobJoin = j.events.map((args) => payload(alice, args)[0]).find((e) => e.user === "bob");
    assert.deepEqual(bobJoin, { room, user: "bob", name: "BOB", members: 2 });
    ok(await request(bob3, "leave", room));
    ok(await request(bob2, "leave", room));
    await until(() => l.events.length >= 1, "a leave event");
    const p = await request(carol, "presence", { room });
    ok(p);
    assert.deepEqual(p.users.map((u) => u.user), ["alice", "carol"]);
    assert.equal(p.count, 2);
    await sleep(300);
    assert.deepEqual(users(alice, j).sort(), ["bob", "carol"]);
    assert.deepEqual(users(alice, l), ["bob"]);
    assert.equal(payload(alice, l.events[0])[0].members, 2);
    // The API of any node reads the same presence.
    const res = await nodes[1].api("GET", `/api/v1/presence?room=${encodeURIComponent(room)}`, { token: API_TOKEN });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.users.map((u) => u.user), ["alice", "carol"]);
    const rooms = await nodes[2].api("GET", "/api/v1/rooms", { token: API_TOKEN });
    assert.deepEqual(rooms.json.rooms.find((r) => r.name === room), { name: room, users: 2, sockets: 2 });
    for (const s of [alice, bob2, bob3, carol]) s.disconnect();
  });

  test("a socket that recovers is not seen to leave and join again", async () => {
    const room = unique("room:r");
    const alice = await client(0, "alice");
    ok(await request(alice, "join", room));
    const dave = await client(1, "dave", { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    // The announcement of dave's join may reach alice after dave's ack.
    const announced = nextEvent(alice, "roomcast:join");
    ok(await request(dave, "join", room));
    assert.equal(payload(alice, await announced)[0].user, "dave");
    const j = joins(alice);
    const l = leaves(alice);
    const recovered = new Promise((resolve) => dave.io.once("reconnect", () => resolve()));
    dave.io.engine.close(); // a cut transport: the client reconnects and recovers
    await recovered;
    await until(() => dave.connected, "dave back");
    assert.equal(dave.recovered, true);
    await sleep(500);
    assert.deepEqual(users(alice, l), []);
    assert.deepEqual(users(alice, j), []);
    const p = await request(alice, "presence", { room });
    assert.deepEqual(p.users.map((u) => [u.user, u.sockets]), [["alice", 1], ["dave", 1]]);
    alice.disconnect();
    dave.disconnect();
  });

  test("a node killed with SIGKILL is swept: leave events, presence, one disconnect per lost socket", { timeout: 60000 }, async () => {
    const room = unique("room:k");
    const alice = await client(0, "alice");
    ok(await request(alice, "join", room));
    const l = leaves(alice);
    const erin = await client(2, "erin");
    const frank = await client(2, "frank");
    const frank1 = await client(1, "frank"); // frank stays, on a live node
    const gone = [erin.id, frank.id];
    for (const s of [erin, frank, frank1]) ok(await request(s, "join", room));
    const before = await request(alice, "presence", { room });
    assert.equal(before.count, 3);
    nodes[2].child.kill("SIGKILL");
    await nodes[2].exitPromise;
    // The lease (three 5 s heartbeats) expires, then a live node sweeps.
    await until(() => l.events.length >= 1, "erin's leave event", 40000);
    await sleep(500);
    assert.deepEqual(users(alice, l), ["erin"]);
    const p = await request(alice, "presence", { room });
    assert.deepEqual(p.users.map((u) => [u.user, u.sockets]), [["alice", 1], ["frank", 1]]);
    const entries = await rc.xRange(`${PREFIX}:events`, "-", "+");
    const disconnects = entries.map((e) => JSON.parse(e.message.event)).filter((e) => e.type === "disconnect");
    for (const sid of gone) {
      const mine = disconnects.filter((e) => e.socket === sid);
      assert.equal(mine.length, 1, `disconnects of ${sid}: ${JSON.stringify(mine)}`);
      assert.equal(mine[0].reason, "node lost");
      assert.equal(mine[0].node, "n3");
    }
    const ids = entries.map((e) => e.message.id);
    assert.equal(new Set(ids).size, ids.length, "every event id once in the stream");
    alice.disconnect();
    frank1.disconnect();
  });
});
