// Package hook is the backend's side of Roomcast's gateway hooks: the
// request and response types of the webhook (client events), the connect
// hook, the publish hook and the lifecycle hook (batches of lifecycle
// events, at least once), the verification of their signatures, and an
// http.Handler that does both and calls your functions.
//
// The contract is the one docs/HOOKS.md describes as JSON schemas; a
// backend in any language can implement it. Every request is a POST with a
// JSON body whose "type" says which hook it is ("event", "connect",
// "publish", "lifecycle"), signed with the gateway's --hook-secret:
//
//	X-Roomcast-Timestamp: <unix seconds>
//	X-Roomcast-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">
//
// Binary values (Socket.IO attachments) travel as {"$binary": "<base64>"}
// both ways; Binary and BinaryOf convert.
//
// # Concurrency
//
// Handler is safe for concurrent use once built; the gateway may send a
// socket's next event only after the previous one was answered, but
// different sockets' events arrive concurrently. Sign and Verify are pure
// functions.
package hook
