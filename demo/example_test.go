package demo_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/roomcast/roomcast/demo"
)

// Mount the demo at "/" and the official client bundle where the page loads
// it, as the gateway does with --demo.
func Example() {
	mux := http.NewServeMux()
	mux.Handle("/", demo.Handler())
	mux.HandleFunc("GET /socket.io/socket.io.js", func(w http.ResponseWriter, r *http.Request) {
		js, ok := demo.ClientScript()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
		_, _ = w.Write(js)
	})

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output: 200 text/html; charset=utf-8
}
