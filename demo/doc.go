// Package demo holds the Roomcast chat demo: a small static web page (plain
// HTML, CSS and JavaScript, no build step) that talks to the gateway through
// the official socket.io-client, the same chat the socket.io tutorials build:
// a display name, rooms ("general" by default, others joined and left at
// will), messages, direct messages to a user, and who is online in the
// current room.
//
// The files are embedded into the binary with go:embed, so the gateway serves
// them with [Handler] when it runs with --demo. The page loads the client from
// /socket.io/socket.io.js, which the gateway serves from [ClientScript], as
// the reference Node server does. The client bundle itself is not kept in the
// repository: the build copies it from the npm package into
// static/vendor/socket.io.min.js before compiling (see the Makefile); without
// it [ClientScript] reports false and the gateway answers 404 for the script.
//
// # Concurrency
//
// Everything here is read-only after package initialisation: [Handler] may be
// called any number of times, and the handler it returns, like
// [ClientScript], is safe for concurrent use by any number of goroutines.
package demo
