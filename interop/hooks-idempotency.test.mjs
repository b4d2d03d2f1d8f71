// Idempotent publish across two nodes sharing a Redis: an emit repeated with
// the same idempotencyKey, on either node, is delivered once and answered
// with the first answer; while Redis is away it is refused, not delivered.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { record, signJWT, startRedis, unique, until, useGateway } from "./gateway.mjs";

const API_TOKEN = "interop-idem-api";
const JWT_SECRET = "interop-idem-jwt";

describe("idempotent emit", () => {
  let redis;
  before(async () => {
    redis = await startRedis({ aof: true });
  });
  after(async () => {
    if (redis) await redis.stop();
  });

  const args = () => ["--redis", redis.url, "--origins", "*", "--jwt-secret", JWT_SECRET, "--api-token", API_TOKEN, "--connect-rate", "-1"];
  const node1 = useGateway(() => ({ args: [...args(), "--node-id", "idem-1"] }));
  const node2 = useGateway(() => ({ args: [...args(), "--node-id", "idem-2"] }));

  const emit = (node, body) => node.gw.api("POST", "/api/v1/emit", { token: API_TOKEN, body });

  test("a repeat with the same key on either node is delivered once, with the first answer", async () => {
    const user = unique("ann");
    const room = unique("room");
    const token = signJWT({ sub: user, join: [room] }, JWT_SECRET);
    const onUser = await node2.connect({ auth: { token } });
    const inRoom = await node1.connect({ auth: { token } });
    assert.deepEqual(await inRoom.timeout(5000).emitWithAck("join", room), { ok: true });
    const toUser = record(onUser, "dm");
    const toRoom = record(inRoom, "news");

    const key = unique("order");
    const dm = { users: [user], event: "dm", args: ["hi"], idempotencyKey: key };
    const first = await emit(node1, dm);
    assert.equal(first.status, 200, first.text);
    const ids = first.json.ids;
    assert.ok(ids[user], first.text);
    for (const node of [node2, node1, node2]) {
      const again = await emit(node, dm);
      assert.equal(again.status, 200, again.text);
      assert.deepEqual(again.json, { ok: true, ids, duplicate: true });
    }
    const news = { rooms: [room], event: "news", args: [1], idempotencyKey: unique("news") };
    assert.equal((await emit(node2, news)).status, 200);
    assert.equal((await emit(node1, news)).json.duplicate, true);

    // Both of the first deliveries arrive (one per socket of the user for
    // dm: onUser and inRoom), and no second one.
    await until(() => toUser.events.length >= 1 && toRoom.events.length >= 1, "the first deliveries");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(toUser.events.length, 1, JSON.stringify(toUser.events));
    assert.equal(toRoom.events.length, 1, JSON.stringify(toRoom.events));
  });

  test("a client publish repeated with its key from the same user on the other node is delivered once", async () => {
    const pat = unique("pat");
    const bob = unique("bob");
    const room = unique("room");
    const patToken = signJWT({ sub: pat, join: [room], publish: [room], dm: [bob] }, JWT_SECRET);
    const onNode1 = await node1.connect({ auth: { token: patToken } });
    const onNode2 = await node2.connect({ auth: { token: patToken } });
    const member = await node2.connect({ auth: { token: signJWT({ sub: bob, join: [room] }, JWT_SECRET) } });
    assert.deepEqual(await member.timeout(5000).emitWithAck("join", room), { ok: true });
    const inRoom = record(member, "m");
    const direct = record(member, "d");
    const publish = (s, body) => s.timeout(5000).emitWithAck("publish", body);

    const toRoom = { room, event: "m", data: 1, idempotencyKey: unique("p") };
    assert.deepEqual(await publish(onNode1, toRoom), { ok: true });
    assert.deepEqual(await publish(onNode2, toRoom), { ok: true, duplicate: true });
    const dm = { user: bob, event: "d", data: 2, idempotencyKey: unique("p") };
    const first = await publish(onNode2, dm);
    assert.ok(first.id, JSON.stringify(first));
    assert.deepEqual(await publish(onNode1, dm), { ...first, duplicate: true });

    await until(() => inRoom.events.length >= 1 && direct.events.length >= 1, "the first deliveries");
    await sleep(300);
    assert.equal(inRoom.events.length, 1, JSON.stringify(inRoom.events));
    assert.equal(direct.events.length, 1, JSON.stringify(direct.events));
  });

  test("while Redis is away an emit with a key is refused and not delivered; after, it runs once", async () => {
    const user = unique("bob");
    const s = await node1.connect({ auth: { token: signJWT({ sub: user }, JWT_SECRET) } });
    const got = record(s, "dm");
    const body = { users: [user], event: "dm", args: [2], idempotencyKey: unique("k") };
    await redis.kill();
    const refused = await emit(node2, body);
    assert.equal(refused.status, 503, refused.text);
    await redis.restart();
    let ok;
    await until(async () => {
      ok = await emit(node2, body);
      return ok.status === 200;
    }, "an emit after the restart", 15000);
    const again = await emit(node1, body);
    assert.equal(again.json.duplicate, true, again.text);
    assert.deepEqual(again.json.ids, ok.json.ids);
    // Told "delivered" (200) after the restart: it arrives, once.
    await until(() => got.events.length >= 1, "the delivery", 15000);
    await sleep(300);
    assert.equal(got.events.length, 1, `delivered ${got.events.length} times`);
  });

  test("one key repeated on both nodes across a Redis crash and restart: delivered at most once, and every answer says whether", async (t) => {
    const user = unique("cy");
    const token = signJWT({ sub: user }, JWT_SECRET);
    const sockets = [await node1.connect({ auth: { token } }), await node2.connect({ auth: { token } })];
    const got = sockets.map((s) => record(s, "dm"));
    const body = { users: [user], event: "dm", args: ["once"], idempotencyKey: unique("crash") };
    // A retrying caller: the same request every 25 ms, alternately on each
    // node, before, during and after the outage.
    const answers = [];
    let stop = false;
    const caller = (async () => {
      for (let i = 0; !stop; i++) {
        const node = i % 2 ? node2 : node1;
        answers.push(await emit(node, body).catch((err) => ({ status: 0, text: String(err) })));
        await sleep(25);
      }
    })();
    await until(() => answers.length >= 2, "the first answers");
    await redis.kill();
    await until(() => answers.slice(-2).every((a) => a.status === 503), "emits refused while Redis is away", 10000);
    await redis.restart();
    const restarted = answers.length;
    await until(() => answers.slice(restarted).some((a) => a.status === 200), "an answer after the restart", 15000);
    stop = true;
    await caller;

    const tally = {};
    for (const a of answers) tally[`${a.status}${a.json && a.json.duplicate ? " duplicate" : ""}`] = (tally[`${a.status}${a.json && a.json.duplicate ? " duplicate" : ""}`] || 0) + 1;
    t.diagnostic(`answers: ${JSON.stringify(tally)}`);
    const statuses = new Set(answers.map((a) => a.status));
    for (const st of statuses) assert.ok([200, 409, 503].includes(st), `answer ${st}: ${answers.find((a) => a.status === st).text}`);
    const ok = answers.filter((a) => a.status === 200);
    const ran = ok.filter((a) => !a.json.duplicate);
    assert.ok(ran.length <= 1, `ran ${ran.length} times: ${JSON.stringify(ran.map((a) => a.json))}`);
    for (const a of ok) assert.deepEqual(a.json.ids, ok[0].json.ids, "every 200 answers the same entry");
    for (const a of answers.filter((x) => x.status === 503)) assert.equal(a.json.error.code, "unavailable", a.text);
    // Told "delivered" (200): each of the user's sockets gets it, once.
    await until(() => got.every((r) => r.events.length >= 1), "the delivery to both sockets", 15000);
    await sleep(300);
    for (const r of got) assert.equal(r.events.length, 1, `delivered ${r.events.length} times: ${JSON.stringify(r.events)}`);
  });
});
