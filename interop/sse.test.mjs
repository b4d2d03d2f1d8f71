// One-way Server-Sent Events (GET /sse) in a real browser: headless
// Chromium's EventSource reads a user's durable messages and a room's
// broadcasts from one node; the node is SIGKILLed and restarted while the
// publisher goes on through another node; EventSource reconnects by itself
// with Last-Event-ID and receives everything, in order, once.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { Gateway, signJWT, startGateway, startRedis, now, until } from "./gateway.mjs";

const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const skip = existsSync(executablePath)
  ? false
  : `Chromium not found at ${executablePath}: apt-get install -y chromium (or set CHROMIUM_PATH)`;
if (skip) console.log(`# skipping the SSE browser test: ${skip}`);

const SECRET = "sse-secret";
const API = "sse-api";

describe("EventSource in Chromium", { skip }, () => {
  let redis, a, b, browser;
  const args = () => ["--redis", redis.url, "--origins", "*", "--jwt-secret", SECRET, "--api-token", API, "--demo"];

  before(async () => {
    redis = await startRedis();
    a = await startGateway({ args: args() });
    b = await startGateway({ args: args() });
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
  });
  after(async () => {
    await browser?.close();
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  const emit = async (body) => {
    const res = await b.api("POST", "/api/v1/emit", { token: API, body });
    assert.ok(res.status < 300, `emit: ${res.status} ${res.text}`);
  };

  test("resumes after a node restart with Last-Event-ID, gap-free", async () => {
    const token = signJWT({ sub: "reader", join: ["news:*"], exp: now() + 3600 }, SECRET);
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(10000);
    assert.equal((await page.goto(a.url + "/")).status(), 200);
    await page.evaluate((src) => {
      window.got = [];
      window.opens = 0;
      const es = new EventSource(src);
      es.onopen = () => window.opens++;
      for (const type of ["headline", "dm"]) {
        es.addEventListener(type, (e) => window.got.push({ type, id: e.lastEventId, data: JSON.parse(e.data) }));
      }
    }, `/sse?token=${encodeURIComponent(token)}&rooms=news:1`);
    await until(() => page.evaluate(() => window.opens === 1), "the stream to open");

    const got = () => page.evaluate(() => window.got);
    let n = 0;
    const publish = async (count) => {
      for (let i = 0; i < count; i++, n++) {
        await emit({ event: "headline", args: [n], rooms: ["news:1"] });
        if (n % 5 === 0) await emit({ event: "dm", args: [n], users: ["reader"] });
      }
    };
    await publish(20);
    await until(async () => (await got()).filter((e) => e.type === "headline").length === 20, "20 live headlines");

    // The node holding the stream dies; messages go on through the other.
    a.child.kill("SIGKILL");
    await a.exitPromise;
    await publish(20);
    const restarted = new Gateway(a.port, a.adminPort, args(), {});
    await restarted.waitReady(15000);
    a = restarted;
    await until(() => page.evaluate(() => window.opens >= 2), "EventSource to reconnect", 20000);
    await publish(10);
    await until(async () => (await got()).filter((e) => e.type === "headline").length >= 50, "50 headlines", 10000);

    const events = await got();
    const headlines = events.filter((e) => e.type === "headline").map((e) => e.data[0]);
    const dms = events.filter((e) => e.type === "dm").map((e) => e.data[0]);
    assert.deepEqual(headlines, Array.from({ length: 50 }, (_, i) => i), "every room broadcast once, in order");
    assert.deepEqual(dms, Array.from({ length: 10 }, (_, i) => i * 5), "every durable message once, in order");
    // Every id is an offset "<user>~<log>" whose parts never go back.
    let prev = [[0, 0], [0, 0]];
    for (const e of events) {
      const parts = e.id.split("~").map((p) => p.split("-").map(Number));
      assert.equal(parts.length, 2, e.id);
      for (let k = 0; k < 2; k++) {
        const [ms, seq] = parts[k];
        assert.ok(ms > prev[k][0] || (ms === prev[k][0] && seq >= prev[k][1]), `id ${e.id} goes back`);
      }
      prev = parts;
    }
  });
});
