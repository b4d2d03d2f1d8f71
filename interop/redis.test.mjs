// Roomcast with Redis, against the npm packages it must interoperate with:
// @socket.io/redis-emitter publishing into it, two gateway nodes sharing
// rooms, and a Node socket.io server with @socket.io/redis-adapter on the same
// Redis (gradual migration). Skipped when redis-server is not installed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { Server } from "socket.io";
import { io as ioClient } from "socket.io-client";
import { TIMEOUT, connected, freePort, gatewayBin, nextEvent, payload, record, redisServerBin, request, startRedis, unique, useGateway } from "./gateway.mjs";

// Skipped without redis-server, and while the gateway has no --redis flag
// (set INTEROP_REQUIRE_REDIS=1 to fail instead).
function skipReason() {
  if (!existsSync(redisServerBin)) return `redis-server not found at ${redisServerBin} (apt-get install -y redis-server)`;
  if (process.env.INTEROP_REQUIRE_REDIS === "1" || !existsSync(gatewayBin)) return false;
  const help = spawnSync(gatewayBin, ["--help"], { encoding: "utf8", timeout: 10000 });
  if (!/^\s*--?redis\b/m.test(`${help.stdout}${help.stderr}`)) return `${gatewayBin} --help lists no --redis flag`;
  return false;
}
const skip = skipReason();
if (skip) console.log(`# skipping the Redis interop tests: ${skip}`);

const API_TOKEN = "api-" + unique("t");
const ok = (ack) => assert.equal(ack && ack.ok, true, `want {ok:true}, got ${JSON.stringify(ack)}`);
const accepted = (res) => assert.ok(res.status === 200 || res.status === 202, `emit: ${res.status} ${res.text}`);

describe("with Redis", { skip }, () => {
  let redis;
  const clients = []; // redis clients to quit
  before(async () => {
    redis = await startRedis();
  });
  const gwOpts = () => ({ args: ["--redis", redis.url, "--origins", "*", "--allow-anonymous", "--allow-anonymous-dm", "--api-token", API_TOKEN] });
  const node1 = useGateway(() => ({ args: [...gwOpts().args, "--node-id", "node-1"] }));
  const node2 = useGateway(() => ({ args: [...gwOpts().args, "--node-id", "node-2"] }));

  // A Node socket.io 4.8 server with @socket.io/redis-adapter on the same Redis.
  let nodeIo, nodeUrl;
  const nodeSockets = new Set();
  before(async () => {
    const pub = createClient({ url: redis.url });
    const sub = pub.duplicate();
    clients.push(pub, sub);
    await Promise.all([pub.connect(), sub.connect()]);
    const httpServer = http.createServer();
    nodeIo = new Server(httpServer, { adapter: createAdapter(pub, sub) });
    nodeIo.on("connection", (socket) => {
      socket.on("join", (room, ack) => {
        socket.join(room);
        ack({ ok: true });
      });
    });
    const port = await freePort();
    await new Promise((resolve) => httpServer.listen(port, "127.0.0.1", resolve));
    nodeUrl = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    for (const s of nodeSockets) s.disconnect();
    if (nodeIo) await new Promise((resolve) => nodeIo.close(() => resolve()));
    for (const c of clients) await c.quit().catch(() => {});
    await redis?.stop();
  });

  const connect = (gw, name) => gw.connect({ transports: ["websocket"], auth: { name } });
  const nodeClient = async () => {
    const s = ioClient(nodeUrl, { forceNew: true, reconnection: false, autoConnect: false, transports: ["websocket"] });
    nodeSockets.add(s);
    return connected(s);
  };

  test("@socket.io/redis-emitter reaches Roomcast clients in the room, on every node", async () => {
    const emitterClient = createClient({ url: redis.url });
    clients.push(emitterClient);
    await emitterClient.connect();
    const emitter = new Emitter(emitterClient);
    const room = unique("emitted");
    const a = await connect(node1, "a");
    const b = await connect(node2, "b");
    const outsider = await connect(node1, "outsider");
    ok(await request(a, "join", room));
    ok(await request(b, "join", room));
    const outsiderNews = record(outsider, "news");

    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const got = [nextEvent(a, "news"), nextEvent(b, "news")];
    emitter.to(room).emit("news", { headline: "from the emitter" }, bytes);
    for (const [i, args] of (await Promise.all(got)).entries()) {
      const [data, buf] = payload([a, b][i], args);
      assert.deepEqual(data, { headline: "from the emitter" });
      assert.ok(Buffer.isBuffer(buf) && buf.equals(bytes), `binary arg: ${buf}`);
    }
    const sync = nextEvent(outsider, "sync");
    emitter.emit("sync");
    await sync;
    assert.deepEqual(outsiderNews.events, []);
  });

  test("two nodes share rooms, presence, direct messages and the socket list", async () => {
    const room = unique("shared");
    const a = await connect(node1, "alice");
    const b = await connect(node2, "bob");
    ok(await request(a, "join", room));
    ok(await request(b, "join", room));

    const gotA = nextEvent(a, "chat");
    ok(await request(b, "publish", { room, event: "chat", data: "across nodes" }));
    const [data, meta] = await gotA;
    assert.equal(data, "across nodes");
    assert.equal(meta.name, "bob");
    const bobId = meta.user;

    const presence = await request(a, "presence", { room });
    ok(presence);
    assert.deepEqual(presence.users.map((u) => u.name).sort(), ["alice", "bob"]);

    const gotB = nextEvent(b, "dm");
    ok(await request(a, "publish", { user: bobId, event: "dm", data: { text: "hi bob" } }));
    assert.deepEqual((await gotB)[0], { text: "hi bob" });

    const res = await node1.gw.api("GET", `/api/v1/sockets?namespace=/&room=${encodeURIComponent(room)}`, { token: API_TOKEN });
    assert.equal(res.status, 200, res.text);
    const byId = new Map(res.json.sockets.map((s) => [s.id, s]));
    assert.ok(byId.has(a.id) && byId.has(b.id), res.text);
    assert.equal(byId.get(b.id).user, bobId);
    assert.notEqual(byId.get(a.id).node, byId.get(b.id).node, "each socket reports its own node");

    const news = nextEvent(a, "news");
    accepted(await node2.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { namespace: "/", event: "news", args: [7], rooms: [room] } }));
    assert.deepEqual(payload(a, await news), [7]);
  });

  test("a Node socket.io server with @socket.io/redis-adapter shares rooms with Roomcast", async () => {
    const room = unique("migrating");
    const n = await nodeClient();
    ok(await n.timeout(TIMEOUT).emitWithAck("join", room));
    const r = await connect(node1, "roomcast");
    ok(await request(r, "join", room));

    // Roomcast -> Node: an API emit and a client publish reach the Node server's client.
    const fromApi = nextEvent(n, "news");
    accepted(await node1.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body: { namespace: "/", event: "news", args: [{ via: "api" }], rooms: [room] } }));
    assert.deepEqual((await fromApi)[0], { via: "api" });
    const fromClient = nextEvent(n, "chat");
    ok(await request(r, "publish", { room, event: "chat", data: Buffer.from("bin") }));
    const [data, meta] = await fromClient;
    assert.ok(Buffer.isBuffer(data) && data.equals(Buffer.from("bin")));
    assert.equal(meta.room, room);

    // Node -> Roomcast: a broadcast from the Node server reaches the Roomcast client.
    const fromNode = nextEvent(r, "hello");
    nodeIo.to(room).emit("hello", "from node", Buffer.from([1, 2]));
    const [text, buf] = payload(r, await fromNode);
    assert.equal(text, "from node");
    assert.ok(Buffer.isBuffer(buf) && buf.equals(Buffer.from([1, 2])));

    // Requests across: the Node server sees Roomcast's sockets in the room.
    const remote = await nodeIo.in(room).fetchSockets();
    const ids = remote.map((s) => s.id).sort();
    assert.deepEqual(ids, [n.id, r.id].sort());
    assert.ok(remote.find((s) => s.id === r.id).rooms.has(room));
  });
});
