// Regenerates interop.json: tokens minted by the npm package jsonwebtoken
// (the issuer most socket.io backends use) for TestInteropJsonwebtoken.
//
//   npm install jsonwebtoken@9   # anywhere; point NODE_PATH at its node_modules
//   NODE_PATH=.../node_modules node gen-interop.cjs > interop.json
//
// Keys are fresh each run; only public keys are written out.
"use strict";
const crypto = require("crypto");
const jwt = require("jsonwebtoken");

const secret = "roomcast-interop-secret-0123456789";
const rsa = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });

// A fixed time the Go test pins its clock to.
const now = 1700000000;
const claims = {
  sub: "user-42",
  join: ["room:*", "lobby"],
  publish: "room:general",
  nbf: now - 10,
  exp: now + 3600,
  name: "Ada",
};

const sign = (alg, key) => jwt.sign(claims, key, { algorithm: alg, noTimestamp: true });

const out = {
  generator: `jsonwebtoken ${require("jsonwebtoken/package.json").version}, node ${process.version}`,
  now,
  claims,
  secret,
  rsaPublicKeyPKIX: rsa.publicKey.export({ type: "spki", format: "pem" }),
  rsaPublicKeyPKCS1: rsa.publicKey.export({ type: "pkcs1", format: "pem" }),
  ecPublicKeyPKIX: ec.publicKey.export({ type: "spki", format: "pem" }),
  tokens: {
    HS256: sign("HS256", secret),
    HS384: sign("HS384", secret),
    HS512: sign("HS512", secret),
    RS256: sign("RS256", rsa.privateKey),
    ES256: sign("ES256", ec.privateKey),
  },
};
process.stdout.write(JSON.stringify(out, null, 2) + "\n");
