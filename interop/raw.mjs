// A raw Engine.IO v4 / Socket.IO v5 client over a websocket, for tests that
// must misbehave the way an attacker does (the official client would not).
import WebSocket from "ws";
import { TIMEOUT } from "./gateway.mjs";

/**
 * A websocket speaking Engine.IO/Socket.IO frames by hand. It answers pings
 * unless `stall` is set, and keeps every text frame it receives.
 */
export class Raw {
  static async open(gw, { query = "", stall = false } = {}) {
    const r = new Raw();
    r.frames = [];
    r.waiters = [];
    r.closed = false;
    r.sock = new WebSocket(`ws://127.0.0.1:${gw.port}/socket.io/?EIO=4&transport=websocket${query}`);
    r.sock.on("message", (data, isBinary) => {
      if (isBinary) return;
      const s = data.toString();
      if (s === "2" && !stall) r.sock.send("3");
      r.frames.push(s);
      for (const w of [...r.waiters]) w();
    });
    r.closedPromise = new Promise((resolve) => r.sock.on("close", () => {
      r.closed = true;
      for (const w of [...r.waiters]) w();
      resolve();
    }));
    r.sock.on("error", () => {});
    await new Promise((resolve, reject) => {
      r.sock.once("open", resolve);
      r.sock.once("error", reject);
    });
    await r.wait((f) => f.startsWith("0{"));
    return r;
  }

  send(s) {
    if (!this.closed) this.sock.send(s);
  }

  /** Resolves with (and removes) the first frame matching pred. */
  wait(pred, timeout = TIMEOUT) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.frames.findIndex(pred);
        if (i >= 0) {
          done();
          resolve(this.frames.splice(i, 1)[0]);
        } else if (this.closed) {
          done();
          reject(new Error("connection closed"));
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching frame within ${timeout} ms (have ${JSON.stringify(this.frames.slice(-5))})`));
      }, timeout);
      this.waiters.push(check);
      check();
    });
  }

  close() {
    this.sock.terminate();
  }
}

/** CONNECT to "/" with auth; resolves with the CONNECT reply or CONNECT_ERROR frame. */
export async function rawConnect(r, auth) {
  r.send("40" + JSON.stringify(auth));
  return r.wait((f) => f.startsWith("40") || f.startsWith("44"));
}

