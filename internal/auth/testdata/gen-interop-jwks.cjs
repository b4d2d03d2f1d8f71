// Regenerates interop-jwks.json: the public keys of interop.json as a JWK Set,
// encoded by node's own crypto (an implementation independent of ours), for
// TestInteropJWKS. No npm package is needed:
//
//   node gen-interop-jwks.cjs < interop.json > interop-jwks.json
"use strict";
const crypto = require("crypto");

const iv = JSON.parse(require("fs").readFileSync(0, "utf8"));
const jwk = (pem, kid, alg) => ({
  ...crypto.createPublicKey(pem).export({ format: "jwk" }),
  kid,
  use: "sig",
  alg,
});
const out = {
  generator: `node ${process.version} crypto KeyObject.export({format: "jwk"})`,
  keys: [
    jwk(iv.rsaPublicKeyPKIX, "rsa-1", "RS256"),
    jwk(iv.ecPublicKeyPKIX, "ec-1", "ES256"),
  ],
};
process.stdout.write(JSON.stringify(out, null, 2) + "\n");
