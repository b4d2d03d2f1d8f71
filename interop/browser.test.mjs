// The chat demo in a real browser: headless Chromium driven by playwright-core,
// two people chatting through the gateway with the official client bundle the
// gateway serves at /socket.io/socket.io.js.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { useGateway } from "./gateway.mjs";

const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const skip = existsSync(executablePath)
  ? false
  : `Chromium not found at ${executablePath}: apt-get install -y chromium (or set CHROMIUM_PATH)`;
if (skip) console.log(`# skipping the browser test: ${skip}`);

// Where to leave screenshots for a person to look at (unset: none).
const shots = process.env.BROWSER_SCREENSHOTS;

describe("chat demo in Chromium", { skip }, () => {
  const ctx = useGateway({ args: ["--demo", "--allow-anonymous", "--allow-anonymous-dm"] });
  let browser;
  const problems = [];

  before(async () => {
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
  });
  after(async () => {
    await browser?.close();
  });

  async function person(name) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    // The presence reads the page sends (a `presence` event, over polling
    // or the websocket): who is online must follow events, not polling.
    page.presenceReads = 0;
    const isRead = (text) => typeof text === "string" && /(^|\x1e)42\d*\["presence"/.test(text);
    page.on("request", (req) => {
      if (req.method() === "POST" && isRead(req.postData())) page.presenceReads++;
    });
    page.on("websocket", (ws) => ws.on("framesent", (f) => {
      if (isRead(f.payload)) page.presenceReads++;
    }));
    page.on("pageerror", (err) => problems.push(`${name}: page error: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.push(`${name}: console error: ${msg.text()}`);
    });
    const res = await page.goto(ctx.gw.url + "/");
    assert.equal(res.status(), 200);
    await page.fill("#name", name);
    await page.click("#enter");
    await page.locator("#chat").waitFor({ state: "visible" });
    await page.locator("#login").waitFor({ state: "hidden" });
    await page.locator("#status[data-state=online]").waitFor();
    await page.locator('#rooms li[data-key="r/general"].current').waitFor();
    return page;
  }

  const shot = async (page, file) => {
    if (!shots) return;
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, file) });
  };

  test("the gateway serves the page and the official client", async () => {
    const res = await fetch(ctx.gw.url + "/socket.io/socket.io.js");
    const body = await res.text();
    assert.equal(res.status, 200, "the client bundle is served (built with `make vendor`?)");
    assert.match(res.headers.get("content-type"), /javascript/);
    assert.match(body, /Socket\.IO v4\.8/);
  });

  test("two people chat in general and by direct message", async () => {
    const alice = await person("alice");
    const bob = await person("bob");

    // Each sees the other online in #general (bob's arrival is announced to the room).
    await alice.locator("#users li", { hasText: "bob" }).waitFor();
    await bob.locator("#users li", { hasText: "alice" }).waitFor();
    assert.equal(await alice.locator("#users li.self").textContent(), "alice (you)");

    // A message in #general.
    await bob.fill("#message", "hello from bob");
    await bob.click("#send");
    const got = alice.locator("#log li.msg", { hasText: "hello from bob" });
    await got.waitFor();
    assert.equal(await got.locator(".author").textContent(), "bob");
    await bob.locator("#log li.msg.mine", { hasText: "hello from bob" }).waitFor();
    assert.equal(await bob.inputValue("#message"), "", "the composer is cleared after sending");

    // A direct message: alice clicks bob in the online list.
    await alice.locator("#users li", { hasText: "bob" }).click();
    assert.equal(await alice.locator("#title").textContent(), "@ bob");
    await alice.fill("#message", "psst, bob");
    await alice.click("#send");
    await alice.locator("#log li.msg.mine", { hasText: "psst, bob" }).waitFor();

    // Bob sees a new conversation with one unread message, opens it, answers.
    const dm = bob.locator("#dms li", { hasText: "alice" });
    await dm.locator(".badge", { hasText: "1" }).waitFor();
    await shot(bob, "bob-unread.png");
    assert.equal(await bob.locator("#log li.msg", { hasText: "psst, bob" }).count(), 0, "the DM is not shown in #general");
    await dm.click();
    await bob.locator("#log li.msg", { hasText: "psst, bob" }).waitFor();
    await bob.fill("#message", "hi alice");
    await bob.click("#send");
    await alice.locator("#log li.msg", { hasText: "hi alice" }).waitFor();

    // Alice joins another room; bob is not there, so it lists only her.
    await alice.fill("#join-room", "random");
    await alice.click("#join-form button");
    await alice.locator('#rooms li[data-key="r/random"].current').waitFor();
    await alice.locator("#users li.self").waitFor();
    assert.equal(await alice.locator("#users li").count(), 1);
    await shot(alice, "alice.png");

    // Bob joins #random: alice's list follows the gateway's roomcast:join
    // event (the page does not poll presence), then his leave — without
    // alice's page reading presence again, then or while it sits idle.
    assert.ok(alice.presenceReads >= 1, "alice's page read #random's presence once");
    const reads = alice.presenceReads;
    await bob.fill("#join-room", "random");
    await bob.click("#join-form button");
    await alice.locator("#users li", { hasText: "bob" }).waitFor({ timeout: 3000 });
    await alice.locator("#log li", { hasText: "bob joined." }).waitFor({ timeout: 3000 });
    await bob.locator('#rooms li[data-key="r/random"] button.leave').click();
    await alice.locator("#log li", { hasText: "bob left." }).waitFor({ timeout: 3000 });
    assert.equal(await alice.locator("#users li").count(), 1);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(alice.presenceReads, reads, "alice's page read presence again instead of following the events");

    assert.deepEqual(problems, []);
  });
});
