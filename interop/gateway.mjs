// Shared helpers for the interop tests: spawn the real gateway binary on free
// loopback ports, mint JWTs, and drive the official socket.io-client.
//
// Nothing here builds the binary: `make build` (or
// `go build -o bin/gateway ./cmd/gateway`) does, and GATEWAY_BIN points
// elsewhere when needed.

import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Path of the gateway binary: $GATEWAY_BIN, else bin/gateway in the repository. */
export const gatewayBin = path.resolve(repoRoot, process.env.GATEWAY_BIN || "bin/gateway");

/** Default bound for anything a test waits for. */
export const TIMEOUT = 5000;

// --- ports and processes ---------------------------------------------------

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Starts bin/gateway with the given extra flags on two free loopback ports and
 * waits until its admin /healthz and /readyz answer 200.
 *
 * @param {{args?: string[], env?: Record<string,string>, startTimeout?: number}} [opts]
 * @returns {Promise<Gateway>}
 */
export async function startGateway({ args = [], env = {}, startTimeout = 15000 } = {}) {
  if (!existsSync(gatewayBin)) {
    throw new Error(`gateway binary not found at ${gatewayBin}: build it with \`go build -o bin/gateway ./cmd/gateway\``);
  }
  let lastErr;
  // A port found free can be taken before the gateway binds it: retry then.
  for (let attempt = 0; attempt < 3; attempt++) {
    const gw = new Gateway(await freePort(), await freePort(), args, env);
    try {
      await gw.waitReady(startTimeout);
      return gw;
    } catch (err) {
      lastErr = err;
      await gw.stop();
      if (!/address already in use/i.test(gw.output())) break;
    }
  }
  throw lastErr;
}

/** A running gateway process. */
export class Gateway {
  constructor(port, adminPort, args, env) {
    this.port = port;
    this.adminPort = adminPort;
    this.url = `http://127.0.0.1:${port}`;
    this.adminUrl = `http://127.0.0.1:${adminPort}`;
    this.args = ["--addr", `127.0.0.1:${port}`, "--admin-addr", `127.0.0.1:${adminPort}`, ...args];
    this.logs = [];
    this.exited = null;
    this.child = spawn(gatewayBin, this.args, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(this.child);
    const keep = (chunk) => {
      this.logs.push(chunk.toString());
      if (this.logs.length > 2000) this.logs.splice(0, 1000);
    };
    this.child.stdout.on("data", keep);
    this.child.stderr.on("data", keep);
    this.exitPromise = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => {
        running.delete(this.child);
        this.exited = { code, signal };
        resolve(this.exited);
      });
      this.child.on("error", (err) => {
        running.delete(this.child);
        this.logs.push(String(err));
        this.exited = { code: null, signal: null, error: err };
        resolve(this.exited);
      });
    });
  }

  /** Everything the process printed so far (its last lines, if it is chatty). */
  output() {
    return this.logs.join("");
  }

  async waitReady(timeout) {
    const deadline = Date.now() + timeout;
    for (const probe of ["/healthz", "/readyz"]) {
      for (;;) {
        if (this.exited) {
          throw new Error(`gateway exited (${JSON.stringify(this.exited)}) before ${probe} answered:\n${this.output()}`);
        }
        try {
          const res = await fetch(this.adminUrl + probe, { signal: AbortSignal.timeout(1000) });
          await res.arrayBuffer();
          if (res.status === 200) break;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) {
          throw new Error(`gateway ${probe} not 200 within ${timeout} ms:\n${this.output()}`);
        }
        await sleep(50);
      }
    }
  }

  /** Stops the process: SIGTERM, then SIGKILL if it has not exited within `grace` ms. */
  async stop(grace = 5000) {
    if (this.exited) return this.exited;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), grace);
    const res = await this.exitPromise;
    clearTimeout(timer);
    return res;
  }

  /** A request to the HTTP API with the given bearer token (none when null). */
  async api(method, pathAndQuery, { token = null, body } = {}) {
    const headers = {};
    if (token != null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(this.url + pathAndQuery, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT),
    });
    const text = await res.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }
}

/**
 * Starts a gateway before the tests of the current file (or suite) and stops
 * it, and every client made through it, after them. Fields of the returned
 * object are set once `before` has run. `opts` may be a function, called in
 * `before`, for options known only then.
 */
export function useGateway(opts) {
  const ctx = { gw: null, clients: new Set() };
  before(async () => {
    ctx.gw = await startGateway(typeof opts === "function" ? opts() : opts);
  });
  after(async () => {
    for (const s of ctx.clients) s.disconnect();
    ctx.clients.clear();
    if (ctx.gw) {
      const exit = await ctx.gw.stop();
      if (process.env.GATEWAY_LOG) process.stderr.write(ctx.gw.output());
      ctx.gw.exit = exit;
    }
  });
  /** A new client socket (not yet connected unless `autoConnect` is set). */
  ctx.client = (nsp = "/", options = {}) => {
    const s = io(ctx.gw.url + nsp, {
      forceNew: true,
      reconnection: false,
      autoConnect: false,
      timeout: TIMEOUT,
      ...options,
    });
    ctx.clients.add(s);
    return s;
  };
  /** A connected client; rejects with the connect_error if refused. */
  ctx.connect = async (options = {}, nsp = "/") => {
    const s = ctx.client(nsp, options);
    await connected(s);
    return s;
  };
  /** The connect_error a refused client gets (fails if it connects). */
  ctx.connectError = async (options = {}, nsp = "/") => {
    const s = ctx.client(nsp, options);
    try {
      await connected(s);
    } catch (err) {
      s.disconnect();
      return err;
    }
    s.disconnect();
    throw new Error(`connect to ${nsp} with ${JSON.stringify(options)} succeeded, want connect_error`);
  };
  return ctx;
}

// --- client helpers ------------------------------------------------------------

/** Connects `socket` and resolves on "connect"; rejects with the connect_error. */
export function connected(socket, timeout = TIMEOUT) {
  return new Promise((resolve, reject) => {
    const done = (fn, v) => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
      fn(v);
    };
    const onConnect = () => done(resolve, socket);
    const onError = (err) => done(reject, err);
    const timer = setTimeout(() => done(reject, new Error(`no connect within ${timeout} ms`)), timeout);
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
    if (!socket.connected && !socket.active) socket.connect();
  });
}

/** Emits `event` with `args` and resolves with the ack's value (rejects after `timeout`). */
export function request(socket, event, ...args) {
  return socket.timeout(TIMEOUT).emitWithAck(event, ...args);
}

/** Resolves with the argument list of the next `event` on `socket`. */
export function nextEvent(socket, event, timeout = TIMEOUT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no "${event}" within ${timeout} ms`));
    }, timeout);
    const on = (...args) => {
      clearTimeout(timer);
      socket.off(event, on);
      resolve(args);
    };
    socket.on(event, on);
  });
}

/**
 * Records every `event` a socket receives, so a test can assert one did NOT
 * arrive: `const rec = record(s, "chat"); ... rec.events` (argument lists).
 */
export function record(socket, event) {
  const rec = { events: [] };
  const on = (...args) => rec.events.push(args);
  socket.on(event, on);
  rec.stop = () => socket.off(event, on);
  return rec;
}

/** Resolves once `cond()` is true; rejects after `timeout` with `what`. */
export async function until(cond, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A unique name, so tests sharing a gateway do not see each other's rooms. */
export function unique(prefix) {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

// --- JWT ---------------------------------------------------------------------

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** Seconds since the epoch. */
export const now = () => Math.floor(Date.now() / 1000);

/**
 * A signed JWT. `alg` is HS256, HS384 or HS512; `exp` defaults to one hour from
 * now unless `claims.exp` is given (null leaves it out).
 */
export function signJWT(claims, secret, { alg = "HS256", header = {} } = {}) {
  const hash = { HS256: "sha256", HS384: "sha384", HS512: "sha512" }[alg];
  if (!hash) throw new Error(`unsupported alg ${alg}`);
  const body = { iat: now(), exp: now() + 3600, ...claims };
  if (body.exp === null) delete body.exp;
  const signingInput = `${b64url(JSON.stringify({ alg, typ: "JWT", ...header }))}.${b64url(JSON.stringify(body))}`;
  const sig = createHmac(hash, secret).update(signingInput).digest();
  return `${signingInput}.${b64url(sig)}`;
}

/** An unsigned token with `"alg":"none"` and an empty signature. */
export function unsignedJWT(claims) {
  const body = { iat: now(), exp: now() + 3600, ...claims };
  return `${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${b64url(JSON.stringify(body))}.`;
}

/**
 * The arguments an event handler got, less the offset the gateway appends to
 * every non-volatile event when connection state recovery is on (the official
 * client passes it to handlers too, and records it as `_lastOffset`).
 */
export function payload(socket, args) {
  if (!socket._pid) return args;
  const last = args[args.length - 1];
  if (typeof last !== "string") throw new Error(`recovery is on but the event's last argument is ${JSON.stringify(last)}, not an offset`);
  return args.slice(0, -1);
}

// --- redis-server ------------------------------------------------------------------

/** Path of redis-server: $REDIS_SERVER, else the distribution's. */
export const redisServerBin = process.env.REDIS_SERVER || "/usr/bin/redis-server";

/**
 * Starts a throwaway redis-server on a free loopback port and waits until it
 * answers PING. Returns {url, port, stop()}.
 *
 * Without options it keeps nothing (no RDB, no AOF). With `{aof: true}` it
 * runs with `--appendonly yes --appendfsync always` in a fresh temporary
 * directory (`dir`); `stop()` then also removes the directory. Either way the
 * result has `kill()` (SIGKILL, as a crash) and `restart()` (SIGKILL if it
 * still runs, then a new process on the same port — and directory, which
 * reloads the AOF; without AOF it starts empty; resolves once it answers
 * PING).
 *
 * @param {{aof?: boolean}} [opts]
 */
export async function startRedis({ aof = false } = {}) {
  const port = await freePort();
  const dir = aof ? mkdtempSync(path.join(tmpdir(), "roomcast-redis-")) : null;
  const args = aof
    ? ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir]
    : ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  let proc = await spawnRedis(port, args);
  const removeDir = () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  const server = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      await proc.stop("SIGTERM");
      removeDir();
    },
  };
  if (aof) server.dir = dir;
  server.kill = () => proc.stop("SIGKILL");
  server.restart = async () => {
    await proc.stop("SIGKILL");
    proc = await spawnRedis(port, args);
  };
  return server;
}

/** Spawns redis-server with args and waits until it answers PING on port. */
async function spawnRedis(port, args) {
  const child = spawn(redisServerBin, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let log = "";
  child.stdout.on("data", (c) => (log += c));
  child.stderr.on("data", (c) => (log += c));
  const exited = new Promise((resolve) => child.on("exit", (code) => {
    running.delete(child);
    resolve(code);
  }));
  let dead = false;
  exited.then(() => (dead = true));
  const deadline = Date.now() + 10000;
  for (;;) {
    if (dead) throw new Error(`redis-server exited:\n${log}`);
    const up = await new Promise((resolve) => {
      const c = net.connect(port, "127.0.0.1", () => c.write("PING\r\n"));
      c.on("data", (d) => {
        c.destroy();
        resolve(d.toString().startsWith("+PONG"));
      });
      c.on("error", () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server not up within 10 s:\n${log}`);
    }
    await sleep(50);
  }
  return {
    /** Sends signal (unless it already exited) and waits for the exit. */
    async stop(signal) {
      if (!dead) child.kill(signal);
      await exited;
    },
  };
}
