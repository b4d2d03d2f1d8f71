package demo

import (
	"embed"
	"io/fs"
	"net/http"
)

// static holds the page. Hidden files (such as vendor/.gitignore) are not
// embedded; vendor/socket.io.min.js is, when the build has copied it there.
//
//go:embed static
var static embed.FS

// clientScriptPath is where the build puts the official client bundle,
// relative to the static directory.
const clientScriptPath = "vendor/socket.io.min.js"

// files is the static directory as the root of the served tree.
var files = mustSub(static, "static")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, and dir is a constant.
		panic("demo: " + err.Error())
	}
	return sub
}

// Handler returns an http.Handler serving the demo's static files, with
// index.html at "/". Only GET and HEAD are answered (405 otherwise). Responses
// carry "Cache-Control: no-cache" so a rebuilt binary is picked up at once,
// "X-Content-Type-Options: nosniff", and a strict Content-Security-Policy
// ([ContentSecurityPolicy]): scripts, styles and connections from the page's
// own origin only, no framing by any site, no plugins, no base-URI or form
// redirection.
//
// Mount it at "/" beside the Socket.IO path and the HTTP API; it does not
// serve /socket.io/socket.io.js itself (see [ClientScript]).
func Handler() http.Handler {
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		fileServer.ServeHTTP(w, r)
	})
}

// ContentSecurityPolicy is the policy the demo page is served with. The page
// loads its script, style sheet and the Socket.IO client from its own origin
// and connects back to it (websocket and polling), so nothing else is needed;
// frame-ancestors 'none' stops click-jacking by framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ClientScript returns the official socket.io-client browser bundle
// (socket.io.min.js from the socket.io-client npm package) and true when the
// build embedded it, or nil and false when it did not. The gateway serves it at
// /socket.io/socket.io.js with Content-Type "application/javascript". The
// returned slice is shared: callers must not modify it.
func ClientScript() ([]byte, bool) {
	return clientScript, clientScript != nil
}

var clientScript = readClientScript()

func readClientScript() []byte {
	b, err := fs.ReadFile(files, clientScriptPath)
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}
