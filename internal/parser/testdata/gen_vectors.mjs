// Regenerates socketio_parser_vectors.json: what the reference
// socket.io-parser decoder (installed under the repository's node_modules)
// makes of each message sequence below. vectors_test.go replays the file
// against this package. Run from the repository root after `npm ci`:
//
//	node internal/parser/testdata/gen_vectors.mjs > internal/parser/testdata/socketio_parser_vectors.json
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Decoder, Encoder } from "socket.io-parser";

// The package does not export its package.json; find it from its entry point.
const require = createRequire(import.meta.url);
let dir = dirname(require.resolve("socket.io-parser"));
while (!dir.endsWith("socket.io-parser")) dir = dirname(dir);
const version = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;

const ph = (n) => `{"_placeholder":true,"num":${n}}`;
const bin = (hex) => ({ bin: hex });

// Each vector is a sequence of Engine.IO messages: strings are text
// messages, {bin: hex} binary ones.
const sequences = [
  // docs/socket.io-protocol/v5-current.md examples
  ["0"],
  ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'],
  ['4{"message":"Not authorized"}'],
  ['2["foo"]'],
  ['2/admin,["bar"]'],
  ['212["foo"]'],
  ['3/admin,13["bar"]'],
  ["1"],
  ["1/admin,"],
  [`51-["baz",${ph(0)}]`, bin("01020304")],
  [`52-/admin,["baz",${ph(0)},${ph(1)}]`, bin("0102"), bin("0304")],
  [`61-15["bar",${ph(0)}]`, bin("01020304")],
  [`61-/admin,1[${ph(0)}]`, bin("ff")],
  // socket.io-parser test/parser.js
  ['0/woot,{"token":"123"}'],
  ["1/woot,"],
  ['2["a",1,{}]'],
  ['2[1,"a",{}]'],
  ['2/test,1["a",1,{}]'],
  ['3123["a",1,{}]'],
  ['4"Unauthorized"'],
  ['4{"message":"Unauthorized"}'],
  ['442["some","data"'],
  ['0/admin,"invalid"'],
  ["0[]"],
  ["1/admin,{}"],
  ['2/admin,"invalid'],
  ["2/admin,{}"],
  ['2[{"toString":"foo"}]'],
  ['2[true,"foo"]'],
  ['2[null,"bar"]'],
  ['2["connect"]'],
  ['2["disconnect","123"]'],
  ["5"],
  ["51"],
  ["5a-"],
  ["51.23-"],
  ["999"],
  [`513-["hello",${ph(0)},${ph(1)},${ph(2)}]`],
  ['51-["hello"]', '2["hello"]'],
  // socket.io-parser test/buffer.js, test/arraybuffer.js
  [`51-/cool,23["a",${ph(0)}]`, bin("616263")],
  [`51-/cool,23["a",{"b":["c",${ph(0)}]}]`, bin("616263")],
  [`61-/back,127["a",${ph(0)},{}]`, bin("787878")],
  ['51-["hello",{"_placeholder":true,"num":"splice"}]', bin("776f726c64")],
  [`51-["hello",${ph(1)}]`, bin("776f726c64")],
  [bin("776f726c64")],
  [`51-["hello",${ph(0)}]`, '2["hello"]'],
  [`51-0["a",${ph(0)}]`, bin("0000")],
  [`51-0["a",${ph(0)}]`, bin("0001020304")],
  [`52-/deep,999["a",{"a":"hi","b":{"why":${ph(0)}},"c":{"a":"bye","b":{"a":${ph(1)}}}}]`, bin("000000"), bin("000000000000")],
  [`51-600["a",{"a":"b","c":4,"e":{"g":null},"h":${ph(0)}}]`, bin("000000000000000000")],
  [`51-/deep,999[{"a":"hi ack","b":{"why":${ph(0)}},"c":"bye ack"}]`, bin("0000")],
  // docs/socket.io-protocol/v5-test-suite
  ["0/random"],
  ["0/custom"],
  ["1/custom"],
  ['2["message","message to main namespace"]'],
  ['2["message",1,"2",{"3":[true]}]'],
  [`52-["message",${ph(0)},${ph(1)}]`, bin("010203"), bin("040506")],
  ['2456["message-with-ack",1,"2",{"3":[false]}]'],
  [`52-789["message-with-ack",${ph(0)},${ph(1)}]`, bin("010203"), bin("040506")],
  ["abc"],
  ["2{}"],
  ['2abc["message-with-ack",1,"2",{"3":[false]}]'],
  // edges: framing
  [""],
  ["2"],
  ["7"],
  ["/"],
  ["-"],
  ["3[]"],
  ["30[]"],
  ["3/x,5[null,{\"a\":[1,2,{\"b\":null}]}]"],
  ["4"],
  ["4[]"],
  ["4/x,{\"message\":\"no\",\"data\":{\"x\":1}}"],
  ['0{"token":"x","pid":"p","offset":"1-0"}'],
  ['1"x"'],
  ['0"x"'],
  ["3/admin,1{}"],
  ["2[]"],
  ["2/admin"],
  ["2/admin,"],
  ["0/admin"],
  ["0/admin,"],
  ["0/,{}"],
  ['2/,["a"]'],
  ["0/a/b,{}"],
  ['0/admin{"token":"x"}'],
  ['2/admin,007["a"]'],
  ['2["a"]x'],
  ['2["a"]\n'],
  ['2["a"] \t\r\n'],
  ['3/x,1 []'],
  ['2/x,\t1["a"]'],
  ['2[ "a" , 1 ]'],
  ['2 ["a"]'],
  ['2/admin, ["a"]'],
  ['2-1["a"]'],
  ["01"],
  ["01{}"],
  ["1/admin,1"],
  ['29999999999999999999["a"]'],
  ['2["\\u0063onnect"]'],
  ['2["café","ü"]'],
  ['2["a\\"b","\\n"]'],
  ['2["a",null,true,false,-1.5e3,"x"]'],
  ['2["a",{"_placeholder":true,"num":0}]'],
  // edges: binary
  ['50-["a"]'],
  ["60-1[]"],
  ['5-["a"]'],
  [`50-["a",${ph(0)}]`],
  [`511-["a"]`],
  [`510-["a",${ph(9)}]`, ...Array.from({ length: 10 }, (_, i) => bin("0" + i))],
  [`51-["a",${ph(0)}]`, bin("")],
  ['52-["a",{"_placeholder":true,"num":1.0}]', bin("01"), bin("02")],
  ['52-["a",{"_placeholder":true,"num":1e0}]', bin("01"), bin("02")],
  ['51-["a",{"_placeholder":true,"num":-0}]', bin("01")],
  ['51-["a",{"_placeholder":true,"num":-1}]', bin("01")],
  ['52-["a",{"_placeholder":true,"num":0.5}]', bin("01"), bin("02")],
  ['51-["a",{"_placeholder":true,"num":1e400}]', bin("01")],
  ['51-["a",{"_placeholder":false,"num":9}]', bin("01")],
  ['51-["a",{"_placeholder":"true","num":9}]', bin("01")],
  ['51-["a",{"_placeholder":true,"num":5,"num":0}]', bin("01")],
  ['51-["a",{"\\u005fplaceholder":true,"num":0}]', bin("01")],
  ['51-["a",{"_placeholder":true}]', bin("01")],
  [`52-["a",${ph(0)}]`, bin("01"), bin("02")],
  [`51-["a",${ph(0)},${ph(0)}]`, bin("01")],
  [`51-["a",{"x":${ph(0)}}]`, bin("01"), bin("02")],
  [`51-["a",${ph(0)}]`, `51-["b",${ph(0)}]`],
  ['2["a"]', `51-["b",${ph(0)}]`, bin("01"), '3/x,1[]'],
  [`41-["a",${ph(0)}]`],
  [`21-["a"]`],
];

// Packets for the reference Encoder; binaries as {$bin: hex}. Object keys
// are sorted, the order MarshalArgs writes them in.
const B = (hex) => ({ $bin: hex });
const toEncode = [
  { type: 0, nsp: "/" },
  { type: 0, nsp: "/admin", data: { sid: "oSO0OpakMV_3jnilAAAA" } },
  { type: 1, nsp: "/" },
  { type: 1, nsp: "/admin" },
  { type: 4, nsp: "/", data: { message: "Not authorized" } },
  { type: 4, nsp: "/", data: "Unauthorized" },
  { type: 2, nsp: "/", data: ["foo"] },
  { type: 2, nsp: "/admin", data: ["bar"], id: 13 },
  { type: 2, nsp: "/", data: ["foo"], id: 0 },
  { type: 3, nsp: "/admin", data: ["bar"], id: 13 },
  { type: 3, nsp: "/", data: [], id: 0 },
  { type: 2, nsp: "/", data: ["baz", B("01020304")] },
  { type: 2, nsp: "/admin", data: ["baz", B("0102"), B("0304")] },
  { type: 3, nsp: "/", data: ["bar", B("01020304")], id: 15 },
  { type: 2, nsp: "/cool", data: ["a", { b: ["c", B("616263")] }], id: 23 },
  { type: 3, nsp: "/back", data: ["a", B("787878"), {}], id: 127 },
  { type: 2, nsp: "/deep", data: ["a", { a: "hi", b: { why: B("000000") }, c: { a: "bye", b: { a: B("000000000000") } } }], id: 999 },
  { type: 3, nsp: "/deep", data: [{ a: "hi ack", b: { why: B("0000") }, c: "bye ack" }], id: 999 },
  { type: 2, nsp: "/", data: ["a", B("")] },
  { type: 2, nsp: "/", data: ["x", { a: null, b: true, c: [1, [2, [3]]] }, null, false] },
  { type: 2, nsp: "/", data: ["a\"b\\c\n\r\t\b\f\u0000\u001f\u007f é 日本 😀 \u2028 <>&", "/"] },
  { type: 2, nsp: "/", data: ["n", 0, 1, -1, 1.5, 0.1, 1e21, 1e-7, 123456789012, 1e300, 5e-324, 2 ** 53, 1e20, 0.000001, -2.5e-8] },
];

function denormalize(v) {
  if (Array.isArray(v)) return v.map(denormalize);
  if (v !== null && typeof v === "object") {
    if (typeof v.$bin === "string") return Buffer.from(v.$bin, "hex");
    const o = {};
    for (const k of Object.keys(v)) o[k] = denormalize(v[k]);
    return o;
  }
  return v;
}

// normalize turns decoded data into plain JSON, a binary as {"$bin": hex}.
function normalize(v) {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    return { $bin: Buffer.from(v).toString("hex") };
  }
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = normalize(v[k]);
    return o;
  }
  return v;
}

const out = {
  generator: `socket.io-parser ${version}`,
  vectors: sequences.map((messages) => {
    const decoder = new Decoder();
    const packets = [];
    decoder.on("decoded", (p) =>
      packets.push({
        type: p.type,
        nsp: p.nsp,
        id: p.id ?? null,
        ...(p.data !== undefined && { data: normalize(p.data) }),
      }),
    );
    let error = null;
    for (const m of messages) {
      try {
        decoder.add(typeof m === "string" ? m : Buffer.from(m.bin, "hex"));
      } catch (e) {
        error = e.message;
        break;
      }
    }
    return { messages, packets, error };
  }),
};
const encoder = new Encoder();
out.encodings = toEncode.map((packet) => ({
  packet,
  messages: encoder
    .encode({ ...packet, data: denormalize(packet.data) })
    .map((m) => (typeof m === "string" ? m : { bin: Buffer.from(m).toString("hex") })),
}));

// One vector per line keeps diffs readable.
process.stdout.write(
  `{"generator":${JSON.stringify(out.generator)},"vectors":[\n` +
    out.vectors.map((v) => JSON.stringify(v)).join(",\n") +
    '\n],"encodings":[\n' +
    out.encodings.map((v) => JSON.stringify(v)).join(",\n") +
    "\n]}\n",
);
