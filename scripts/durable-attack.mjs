// Measures what one valid client token (dm: ["*"]) can make the gateway store
// under the default quotas: the Redis used_memory delta and the gateway heap
// after a minute-long window of direct messages as large as allowed, each to
// a made-up user, on reconnecting sockets.
//
//   make build && node scripts/durable-attack.mjs [--memory] [seconds]
//
// --memory runs the gateway without Redis (the queue is the gateway's heap).
// The attack starts at the beginning of a wall-clock minute (the budget's
// window) and lasts 60 s unless given.
import { execFileSync } from "node:child_process";
import { io } from "socket.io-client";
import { connected, request, signJWT, startGateway, startRedis, unique } from "../interop/gateway.mjs";

const memory = process.argv.includes("--memory");
const seconds = Number(process.argv.find((a) => /^\d+$/.test(a)) || 60);
const SECRET = unique("attack-secret");

const redis = memory ? null : await startRedis();
const gw = await startGateway({
  args: ["--jwt-secret", SECRET, ...(redis ? ["--redis", redis.url, "--origins", "*"] : [])],
});
const usedMemory = () =>
  Number(/used_memory:(\d+)/.exec(execFileSync("redis-cli", ["-p", String(redis.port), "info", "memory"]).toString())[1]);
const heap = async () => {
  const text = await (await fetch(gw.adminUrl + "/metrics")).text();
  return Number(/^go_memstats_heap_inuse_bytes (\S+)$/m.exec(text)[1]);
};
const keys = () => Number(execFileSync("redis-cli", ["-p", String(redis.port), "dbsize"]).toString());

const token = signJWT({ sub: unique("attacker"), dm: ["*"] }, SECRET);
const data = "x".repeat(64 * 1024 - 64); // just under --max-durable-message with the sender's meta

const wait = 60_000 - (Date.now() % 60_000);
process.stderr.write(`waiting ${Math.round(wait / 1000)} s for the next budget window\n`);
await new Promise((r) => setTimeout(r, wait));
const before = { redis: redis ? usedMemory() : 0, heap: await heap(), keys: redis ? keys() : 0 };
const end = Date.now() + seconds * 1000;
const acks = {};
const windows = new Set(); // budget windows in which a message was accepted
let socket = null;
while (Date.now() < end) {
  if (!socket || Math.random() < 0.1) {
    socket?.disconnect(); // a new socket does not refill the budget
    socket = io(gw.url, { transports: ["websocket"], auth: { token }, forceNew: true, reconnection: false });
    await connected(socket);
  }
  const ack = await request(socket, "publish", { user: unique("victim"), event: "dm", data });
  const code = ack.ok ? "ok" : ack.error.code;
  if (ack.ok) windows.add(Math.floor(Date.now() / 60_000));
  acks[code] = (acks[code] || 0) + 1;
  if (code !== "ok") await new Promise((r) => setTimeout(r, 20));
}
socket?.disconnect();
await new Promise((r) => setTimeout(r, 500));
const after = { redis: redis ? usedMemory() : 0, heap: await heap(), keys: redis ? keys() : 0 };
console.log(JSON.stringify({
  store: memory ? "memory" : "redis",
  seconds,
  acks,
  acceptedPayloadBytes: (acks.ok || 0) * data.length,
  budgetWindowsTouched: windows.size,
  redisUsedMemoryDelta: after.redis - before.redis,
  redisKeysDelta: after.keys - before.keys,
  gatewayHeapInuseDelta: after.heap - before.heap,
}));
await gw.stop();
await redis?.stop();
