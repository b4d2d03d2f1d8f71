// k6 load test speaking Socket.IO v4 (Engine.IO v4 + Socket.IO v5) over k6
// websockets, against Roomcast's gateway contract (or the socket.io peer in
// loadtest/peer, which implements the same one):
//
//   CONNECT with auth {token: <JWT HS256>}  ->  "join" <room> + ack {ok:true}
//   "publish" {room, event:"m", data:{t, seq, from}} + ack {ok:true}
//   every OTHER member of the room receives "m" with (data, meta)
//
// Each VU opens one connection, joins room "k6-<vu mod ROOMS>", publishes RATE
// messages per second for DURATION, then waits DRAIN_MS for the last
// deliveries and closes. t is Date.now() (milliseconds) at publish.
//
// Environment:
//   TARGET      base URL (http://127.0.0.1:8080)
//   JWT_SECRET  HS256 secret the server checks (empty: no token is sent)
//   VUS         virtual users, one connection each (10)
//   DURATION    how long each VU publishes: 30s, 1m, 500ms, 1m30s (30s)
//   ROOMS       number of rooms the VUs are spread over (1)
//   RATE        publishes per second per VU (1)
//   P99_MS      p(99) bound of delivery_latency, in ms (250)
//   SETTLE_MS   wait after joining before publishing, so every VU has joined (1000)
//   DRAIN_MS    wait after the last publish before closing (2000)
//
// Metrics: delivery_ratio (Rate: a delivery counts true, each message a
// receiver can prove it missed — a gap in a publisher's seq — counts false),
// delivery_latency (Trend, ms), deliveries (Counter), publish_ok (Rate of ok
// acks), connect_ok (Rate), self_deliveries and out_of_order (Counters, must
// stay 0). Thresholds: delivery_ratio >= 0.999, p(99) latency < P99_MS, at
// least one delivery, every connect and publish ok, no self delivery.

import { WebSocket } from "k6/websockets";
import { setTimeout, clearTimeout, setInterval, clearInterval } from "k6/timers";
import { Counter, Rate, Trend } from "k6/metrics";
import encoding from "k6/encoding";
import crypto from "k6/crypto";

function envInt(name, def) {
  const v = parseInt(__ENV[name] || "", 10);
  return Number.isFinite(v) && v > 0 ? v : def;
}

function envFloat(name, def) {
  const v = parseFloat(__ENV[name] || "");
  return Number.isFinite(v) && v > 0 ? v : def;
}

// parseDuration reads "1m30s", "30s", "500ms", "2m", "1h" into milliseconds.
function parseDuration(s, def) {
  if (!s) return def;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const unit = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  let matched = "";
  let m;
  while ((m = re.exec(s)) !== null) {
    total += parseFloat(m[1]) * unit[m[2]];
    matched += m[0];
  }
  if (matched !== s || total <= 0) throw new Error(`bad DURATION ${JSON.stringify(s)}`);
  return total;
}

const TARGET = (__ENV.TARGET || "http://127.0.0.1:8080").replace(/\/+$/, "");
const JWT_SECRET = __ENV.JWT_SECRET || "";
const VUS = envInt("VUS", 10);
const DURATION_MS = parseDuration(__ENV.DURATION, 30000);
const ROOMS = envInt("ROOMS", 1);
const RATE = envFloat("RATE", 1);
const P99_MS = envFloat("P99_MS", 250);
const SETTLE_MS = envInt("SETTLE_MS", 1000);
const DRAIN_MS = envInt("DRAIN_MS", 2000);

const WS_URL = TARGET.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";

export const options = {
  scenarios: {
    socketio: {
      executor: "per-vu-iterations",
      vus: VUS,
      iterations: 1,
      maxDuration: `${Math.ceil((SETTLE_MS + DURATION_MS + DRAIN_MS) / 1000) + 30}s`,
      gracefulStop: "10s",
    },
  },
  thresholds: {
    delivery_ratio: ["rate>=0.999"],
    delivery_latency: [`p(99)<${P99_MS}`],
    deliveries: ["count>0"],
    connect_ok: ["rate==1"],
    publish_ok: ["rate>=0.999"],
    self_deliveries: ["count==0"],
    out_of_order: ["count==0"],
  },
};

const deliveryRatio = new Rate("delivery_ratio");
const deliveryLatency = new Trend("delivery_latency", true);
const deliveries = new Counter("deliveries");
const publishOK = new Rate("publish_ok");
const connectOK = new Rate("connect_ok");
const selfDeliveries = new Counter("self_deliveries");
const outOfOrder = new Counter("out_of_order");

function mintToken(sub) {
  if (!JWT_SECRET) return "";
  const header = encoding.b64encode(JSON.stringify({ alg: "HS256", typ: "JWT" }), "rawurl");
  const now = Math.floor(Date.now() / 1000);
  const payload = encoding.b64encode(
    JSON.stringify({ sub, join: ["*"], publish: ["*"], iat: now, exp: now + 3600 }),
    "rawurl",
  );
  const sig = crypto.hmac("sha256", JWT_SECRET, `${header}.${payload}`, "base64rawurl");
  return `${header}.${payload}.${sig}`;
}

export default function () {
  const me = `k6-${__VU}`;
  const room = `k6-${__VU % ROOMS}`;
  const token = mintToken(me);
  const lastSeq = {}; // publisher -> last seq seen
  let seq = 0;
  let ackID = 0;
  let publishTimer = null;
  let stopTimer = null;
  let closed = false;
  let connected = false;

  const ws = new WebSocket(WS_URL);

  function finish() {
    if (closed) return;
    closed = true;
    if (publishTimer !== null) clearInterval(publishTimer);
    if (stopTimer !== null) clearTimeout(stopTimer);
    ws.close();
  }

  function publish() {
    ackID++;
    const data = { t: Date.now(), seq: seq++, from: me };
    ws.send(`42${ackID}` + JSON.stringify(["publish", { room, event: "m", data }]));
  }

  function startPublishing() {
    setTimeout(() => {
      if (closed) return;
      publishTimer = setInterval(publish, 1000 / RATE);
      stopTimer = setTimeout(() => {
        clearInterval(publishTimer);
        publishTimer = null;
        stopTimer = setTimeout(finish, DRAIN_MS);
      }, DURATION_MS);
    }, SETTLE_MS);
  }

  function onDelivery(args) {
    const data = args[1];
    if (!data || typeof data.t !== "number" || typeof data.seq !== "number") return;
    const now = Date.now();
    if (data.from === me) {
      selfDeliveries.add(1);
      return;
    }
    const last = lastSeq[data.from];
    if (last !== undefined) {
      if (data.seq <= last) {
        outOfOrder.add(1);
        return;
      }
      for (let missed = last + 1; missed < data.seq; missed++) deliveryRatio.add(false);
    }
    lastSeq[data.from] = data.seq;
    deliveryRatio.add(true);
    deliveries.add(1);
    deliveryLatency.add(now - data.t);
  }

  ws.onmessage = (e) => {
    const msg = typeof e.data === "string" ? e.data : "";
    if (msg === "2") {
      ws.send("3");
      return;
    }
    if (msg[0] === "0") {
      ws.send("40" + (token ? JSON.stringify({ token }) : ""));
      return;
    }
    if (msg === "1" || msg === "41") {
      finish();
      return;
    }
    if (msg.startsWith("40")) {
      if (connected) return;
      connected = true;
      connectOK.add(true);
      ws.send("420" + JSON.stringify(["join", room]));
      return;
    }
    if (msg.startsWith("44")) {
      connectOK.add(false);
      console.error(`${me}: connect refused: ${msg.slice(2)}`);
      finish();
      return;
    }
    if (msg.startsWith("43")) {
      const open = msg.indexOf("[");
      const id = parseInt(msg.slice(2, open), 10);
      const res = JSON.parse(msg.slice(open))[0];
      const ok = !!(res && res.ok === true);
      if (id === 0) {
        if (!ok) {
          console.error(`${me}: join refused: ${JSON.stringify(res)}`);
          finish();
          return;
        }
        startPublishing();
        return;
      }
      publishOK.add(ok);
      return;
    }
    if (msg.startsWith("42[")) {
      const args = JSON.parse(msg.slice(2));
      if (args[0] === "m") onDelivery(args);
    }
  };

  ws.onerror = (e) => {
    if (!connected) connectOK.add(false);
    console.error(`${me}: websocket error: ${e.error}`);
    finish();
  };

  ws.onclose = () => {
    closed = true;
    if (publishTimer !== null) clearInterval(publishTimer);
    if (stopTimer !== null) clearTimeout(stopTimer);
  };
}
