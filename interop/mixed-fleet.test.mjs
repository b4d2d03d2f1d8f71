// A mixed fleet on one Redis: two Node socket.io 4.8 servers with
// @socket.io/redis-adapter and two Roomcast gateways (--adapter classic), all
// with the same non-default key (--redis-prefix), plus
// @socket.io/redis-emitter publishing into the lot. Checks that the classic
// adapter is wire-compatible both ways: broadcasts (rooms, except, binary),
// exactly once per client, and the requests between servers (serverCount,
// fetchSockets, socketsJoin, disconnectSockets, broadcast with acks).
// A second suite does the same with the sharded adapters (Node's
// createShardedAdapter and --adapter sharded: Redis 7 SSUBSCRIBE/SPUBLISH,
// socket.io-adapter's ClusterAdapter protocol). Skipped when redis-server is
// not installed.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { Server } from "socket.io";
import { io as ioClient } from "socket.io-client";
import { TIMEOUT, connected, freePort, nextEvent, payload, record, redisServerBin, request, startRedis, unique, until, useGateway } from "./gateway.mjs";

const skip = existsSync(redisServerBin) ? false : `redis-server not found at ${redisServerBin} (apt-get install -y redis-server)`;
if (skip) console.log(`# skipping the mixed-fleet tests: ${skip}`);

const API_TOKEN = "api-" + unique("t");
const KEY = unique("fleet"); // the adapters' key / --redis-prefix, not the default
const ok = (ack) => assert.equal(ack && ack.ok, true, `want {ok:true}, got ${JSON.stringify(ack)}`);
const accepted = (res) => assert.ok(res.status === 200 || res.status === 202, `${res.status} ${res.text}`);
/** Resolves when every client got "sync" (sent after the events under test, on the same path). */
const synced = (clients) => Promise.all(clients.map((c) => nextEvent(c, "sync")));

describe("mixed fleet: Node socket.io servers and Roomcast gateways on one Redis", { skip }, () => {
  let redis;
  const redisClients = [];
  before(async () => {
    redis = await startRedis();
  });
  // Hundreds of sockets from 127.0.0.1: the per-IP limits (security-limits tests them) are off.
  const noIPLimits = ["--connect-rate", "-1", "--handshake-rate", "-1", "--ip-event-rate", "-1", "--max-conns-per-ip", "-1"];
  const gwArgs = (id) => ["--redis", redis.url, "--redis-prefix", KEY, "--adapter", "classic", "--allow-anonymous", "--origins", "*", "--api-token", API_TOKEN, "--node-id", id, ...noIPLimits];
  const rc = [useGateway(() => ({ args: gwArgs("roomcast-1") })), useGateway(() => ({ args: gwArgs("roomcast-2") }))];

  // Two Node socket.io servers with @socket.io/redis-adapter.
  const nodes = []; // {io, url}
  const nodeSockets = new Set();
  before(async () => {
    for (let i = 0; i < 2; i++) {
      const pub = createClient({ url: redis.url });
      const sub = pub.duplicate();
      redisClients.push(pub, sub);
      await Promise.all([pub.connect(), sub.connect()]);
      const httpServer = http.createServer();
      const io = new Server(httpServer, { adapter: createAdapter(pub, sub, { key: KEY }) });
      io.on("connection", (socket) => {
        socket.data = { server: `node-${i}` };
        socket.on("join", (room, ack) => {
          socket.join(room);
          ack({ ok: true });
        });
      });
      const port = await freePort();
      await new Promise((resolve) => httpServer.listen(port, "127.0.0.1", resolve));
      nodes.push({ io, url: `http://127.0.0.1:${port}` });
    }
  });
  after(async () => {
    for (const s of nodeSockets) s.disconnect();
    for (const n of nodes) await new Promise((resolve) => n.io.close(() => resolve()));
    for (const c of redisClients) await c.quit().catch(() => {});
    await redis?.stop();
  });

  // Every server of the fleet counts the four (PUBSUB NUMSUB on the request channel).
  before(async () => {
    await until(async () => (await nodes[0].io.of("/").adapter.serverCount()) === 4, "a fleet of 4 servers", 10000);
  });

  const nodeClient = async (i) => {
    const s = ioClient(nodes[i].url, { forceNew: true, reconnection: false, autoConnect: false, transports: ["websocket"] });
    nodeSockets.add(s);
    return connected(s);
  };
  const rcClient = (i, name) => rc[i].connect({ transports: ["websocket"], auth: { name } });

  /** One client on each server: [node-0, node-1, roomcast-1, roomcast-2], joined to rooms. */
  const fleetClients = async (...rooms) => {
    const cs = [await nodeClient(0), await nodeClient(1), await rcClient(0, "rc-a"), await rcClient(1, "rc-b")];
    for (const room of rooms) {
      for (const c of cs) ok(await request(c, "join", room));
    }
    return cs;
  };

  test("a Node server's broadcasts reach every selected client of the fleet exactly once", async () => {
    const room = unique("room");
    const members = await fleetClients(room);
    const outsiders = await fleetClients();
    const all = [...members, ...outsiders];
    const news = all.map((c) => record(c, "news"));
    const bytes = Buffer.from([0, 1, 2, 254, 255]);

    const sync = synced(all);
    nodes[0].io.to(room).emit("news", "to the room", { n: 1.5 }, bytes);
    nodes[0].io.except(room).emit("news", "to the others");
    nodes[0].io.emit("sync");
    await sync;

    for (const [i, c] of all.entries()) {
      const got = news[i].events.map((args) => payload(c, args));
      assert.equal(got.length, 1, `client ${i}: ${JSON.stringify(got)}`);
      if (i < members.length) {
        const [text, obj, buf] = got[0];
        assert.equal(text, "to the room");
        assert.deepEqual(obj, { n: 1.5 });
        assert.ok(Buffer.isBuffer(buf) && buf.equals(bytes), `client ${i} binary: ${buf}`);
      } else {
        assert.deepEqual(got[0], ["to the others"]);
      }
    }
  });

  test("Roomcast's broadcasts reach the Node servers' clients exactly once", async () => {
    const room = unique("room");
    const members = await fleetClients(room);
    const outsiders = await fleetClients();
    const all = [...members, ...outsiders];
    const chat = all.map((c) => record(c, "chat"));
    const news = all.map((c) => record(c, "news"));

    const sync = synced(all);
    // A client publish on roomcast-1 (binary data), an API emit on roomcast-2.
    ok(await request(members[2], "publish", { room, event: "chat", data: Buffer.from("bin") }));
    accepted(await rc[1].gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { event: "news", args: [{ via: "api" }, [1, "two"]], rooms: [room] } }));
    accepted(await rc[1].gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { event: "sync", args: [], broadcast: true } }));
    await sync;

    for (const [i, c] of all.entries()) {
      const member = i < members.length;
      const gotNews = news[i].events.map((args) => payload(c, args));
      assert.deepEqual(gotNews, member ? [[{ via: "api" }, [1, "two"]]] : [], `client ${i} news`);
      const gotChat = chat[i].events.map((args) => payload(c, args));
      if (!member || i === 2) {
        assert.deepEqual(gotChat, [], `client ${i} chat`); // outsiders, and the publisher itself
        continue;
      }
      assert.equal(gotChat.length, 1, `client ${i} chat: ${JSON.stringify(gotChat)}`);
      const [data, meta] = gotChat[0];
      assert.ok(Buffer.isBuffer(data) && data.equals(Buffer.from("bin")), `client ${i} binary: ${data}`);
      assert.equal(meta.room, room);
    }
  });

  test("@socket.io/redis-emitter publishes into Roomcast and Node servers alike", async () => {
    const emitterClient = createClient({ url: redis.url });
    redisClients.push(emitterClient);
    await emitterClient.connect();
    const emitter = new Emitter(emitterClient, { key: KEY });
    const room = unique("room");
    const moved = unique("moved");
    const members = await fleetClients(room);
    const outsiders = await fleetClients();
    const all = [...members, ...outsiders];
    const news = all.map((c) => record(c, "news"));

    let sync = synced(all);
    emitter.to(room).emit("news", "from the emitter", Buffer.from([9]));
    emitter.emit("sync");
    await sync;
    for (const [i, c] of all.entries()) {
      const got = news[i].events.map((args) => payload(c, args));
      if (i >= members.length) {
        assert.deepEqual(got, [], `outsider ${i}`);
        continue;
      }
      assert.equal(got.length, 1, `member ${i}: ${JSON.stringify(got)}`);
      assert.equal(got[0][0], "from the emitter");
      assert.ok(Buffer.isBuffer(got[0][1]) && got[0][1][0] === 9);
    }

    // socketsJoin (a REMOTE_JOIN without uid) moves members everywhere.
    emitter.in(room).socketsJoin(moved);
    await until(async () => (await nodes[1].io.in(moved).fetchSockets()).length === members.length, "members in the new room");
    const movedNews = all.map((c) => record(c, "moved-news"));
    sync = synced(all);
    emitter.to(moved).emit("moved-news");
    emitter.emit("sync");
    await sync;
    for (const [i] of all.entries()) {
      assert.equal(movedNews[i].events.length, i < members.length ? 1 : 0, `client ${i}`);
    }

    // disconnectSockets: every member, on every server, is disconnected.
    const gone = members.map((c) => nextEvent(c, "disconnect"));
    emitter.in(moved).disconnectSockets();
    for (const reason of await Promise.all(gone)) {
      assert.deepEqual(reason.slice(0, 1), ["io server disconnect"]);
    }
    for (const c of outsiders) assert.ok(c.connected);
  });

  test("requests between servers: fetchSockets, socketsJoin, disconnectSockets, across both kinds", async () => {
    const room = unique("room");
    const members = await fleetClients(room);
    const ids = members.map((c) => c.id).sort();

    // Node -> the fleet: Roomcast answers REMOTE_FETCH with its sockets.
    const fromNode = await nodes[1].io.in(room).fetchSockets();
    assert.deepEqual(fromNode.map((s) => s.id).sort(), ids);
    for (const s of fromNode) {
      assert.ok(s.rooms.has(room) && s.rooms.has(s.id), `rooms of ${s.id}: ${[...s.rooms]}`);
      assert.equal(typeof s.handshake.url, "string");
    }
    assert.deepEqual(fromNode.find((s) => s.id === members[0].id).data, { server: "node-0" });

    // Roomcast -> the fleet: the Node servers answer Roomcast's REMOTE_FETCH.
    const res = await rc[0].gw.api("GET", `/api/v1/sockets?namespace=/&room=${encodeURIComponent(room)}`, { token: API_TOKEN });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.sockets.map((s) => s.id).sort(), ids);
    const nodeOf = new Map(res.json.sockets.map((s) => [s.id, s.node]));
    assert.equal(nodeOf.get(members[2].id), "roomcast-1");
    assert.equal(nodeOf.get(members[3].id), "roomcast-2");

    // Node socketsJoin reaches Roomcast's sockets; Roomcast's reaches Node's.
    const viaNode = unique("via-node");
    const viaRoomcast = unique("via-roomcast");
    nodes[0].io.in(room).socketsJoin(viaNode);
    accepted(await rc[1].gw.api("POST", "/api/v1/sockets/join", { token: API_TOKEN, body: { rooms: [room], join: [viaRoomcast] } }));
    for (const r of [viaNode, viaRoomcast]) {
      await until(async () => {
        const got = await nodes[1].io.in(r).fetchSockets();
        return got.map((s) => s.id).sort().join() === ids.join();
      }, `every member in ${r}`);
    }

    // Disconnect from Roomcast: the Node servers' clients go too.
    const gone = members.map((c) => nextEvent(c, "disconnect"));
    accepted(await rc[0].gw.api("POST", "/api/v1/sockets/disconnect", { token: API_TOKEN, body: { rooms: [viaNode] } }));
    for (const reason of await Promise.all(gone)) {
      assert.equal(reason[0], "io server disconnect");
    }
  });

  test("a Node server's broadcast with acks collects the Roomcast clients' acks", async () => {
    const room = unique("room");
    const members = await fleetClients(room);
    for (const [i, c] of members.entries()) {
      c.on("question", (n, cb) => cb({ client: i, answer: n * 2 }));
    }
    const answers = await nodes[1].io.to(room).timeout(TIMEOUT).emitWithAck("question", 21);
    assert.deepEqual(answers.map((a) => a.client).sort(), [0, 1, 2, 3]);
    for (const a of answers) assert.equal(a.answer, 42);
    // Every server of the fleet reported its client count: no timeout.
    assert.equal(await nodes[0].io.of("/").adapter.serverCount(), 4);
  });
});

describe("mixed sharded fleet: createShardedAdapter and --adapter sharded on one Redis", { skip }, () => {
  let redis;
  const redisClients = [];
  before(async () => {
    redis = await startRedis();
  });
  const gw = useGateway(() => ({
    args: ["--redis", redis.url, "--redis-prefix", KEY, "--adapter", "sharded", "--allow-anonymous", "--origins", "*", "--api-token", API_TOKEN, "--node-id", "roomcast-sharded",
      "--connect-rate", "-1", "--handshake-rate", "-1", "--ip-event-rate", "-1", "--max-conns-per-ip", "-1"],
  }));
  let nodeIo, nodeUrl;
  const nodeSockets = new Set();
  before(async () => {
    const pub = createClient({ url: redis.url });
    const sub = pub.duplicate();
    redisClients.push(pub, sub);
    await Promise.all([pub.connect(), sub.connect()]);
    const httpServer = http.createServer();
    nodeIo = new Server(httpServer, { adapter: createShardedAdapter(pub, sub, { channelPrefix: KEY }) });
    nodeIo.on("connection", (socket) => {
      socket.data = { server: "node-sharded" };
      socket.on("join", (room, ack) => {
        socket.join(room);
        ack({ ok: true });
      });
    });
    const port = await freePort();
    await new Promise((resolve) => httpServer.listen(port, "127.0.0.1", resolve));
    nodeUrl = `http://127.0.0.1:${port}`;
    await until(async () => (await nodeIo.of("/").adapter.serverCount()) === 2, "a fleet of 2 servers", 10000);
  });
  after(async () => {
    for (const s of nodeSockets) s.disconnect();
    if (nodeIo) await new Promise((resolve) => nodeIo.close(() => resolve()));
    for (const c of redisClients) await c.quit().catch(() => {});
    await redis?.stop();
  });
  const nodeClient = async () => {
    const s = ioClient(nodeUrl, { forceNew: true, reconnection: false, autoConnect: false, transports: ["websocket"] });
    nodeSockets.add(s);
    return connected(s);
  };

  test("room broadcasts both ways, exactly once, and fetchSockets across", async () => {
    const room = unique("room");
    const n = await nodeClient();
    const r = await gw.connect({ transports: ["websocket"], auth: { name: "rc" } });
    ok(await request(n, "join", room));
    ok(await request(r, "join", room));
    const nOut = await nodeClient();
    const rOut = await gw.connect({ transports: ["websocket"], auth: { name: "rc-out" } });
    const all = [n, r, nOut, rOut];
    const news = all.map((c) => record(c, "news"));
    // Both servers subscribed to the room's channel (dynamic mode) before publishing.
    const channel = `${KEY}#/#${room}#`;
    const probe = createClient({ url: redis.url });
    redisClients.push(probe);
    await probe.connect();
    await until(async () => {
      const res = await probe.sendCommand(["PUBSUB", "SHARDNUMSUB", channel]);
      return Number(res[1]) === 2;
    }, "two subscribers of the room channel");

    let sync = synced(all);
    nodeIo.to(room).emit("news", "from node", Buffer.from([5]));
    nodeIo.emit("sync");
    await sync;
    sync = synced(all);
    accepted(await gw.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { event: "news", args: ["from roomcast"], rooms: [room] } }));
    accepted(await gw.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { event: "sync", args: [], broadcast: true } }));
    await sync;
    for (const [i, c] of all.entries()) {
      const got = news[i].events.map((args) => payload(c, args));
      if (i >= 2) {
        assert.deepEqual(got, [], `outsider ${i}`);
        continue;
      }
      assert.equal(got.length, 2, `member ${i}: ${JSON.stringify(got)}`);
      assert.equal(got[0][0], "from node");
      assert.ok(Buffer.isBuffer(got[0][1]) && got[0][1][0] === 5, `member ${i} binary`);
      assert.deepEqual(got[1], ["from roomcast"]);
    }

    const socks = await nodeIo.in(room).fetchSockets();
    assert.deepEqual(socks.map((s) => s.id).sort(), [n.id, r.id].sort());
    const res = await gw.gw.api("GET", `/api/v1/sockets?namespace=/&room=${encodeURIComponent(room)}`, { token: API_TOKEN });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.sockets.map((s) => s.id).sort(), [n.id, r.id].sort());

    // A broadcast with acks from Node: Roomcast reports its client count and relays the ack.
    n.on("question", (x, cb) => cb(`node ${x}`));
    r.on("question", (x, cb) => cb(`roomcast ${x}`));
    const answers = await nodeIo.to(room).timeout(TIMEOUT).emitWithAck("question", 1);
    assert.deepEqual(answers.sort(), ["node 1", "roomcast 1"]);
  });
});
