// Command chat-backend is the socket.io chat tutorial's server logic as a
// Roomcast backend: client events arrive through the gateway's --webhook,
// disconnects through its --lifecycle-hook. See README.md.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "localhost:3000", "address to serve the hooks on (POST /hook)")
	gateway := flag.String("gateway", "http://localhost:8080", "the gateway's base URL, for POST /api/v1/emit")
	apiToken := flag.String("api-token", os.Getenv("API_TOKEN"), "the gateway's --api-token (or $API_TOKEN)")
	secret := flag.String("hook-secret", os.Getenv("HOOK_SECRET"), "the gateway's --hook-secret (or $HOOK_SECRET)")
	flag.Parse()
	if *secret == "" || *apiToken == "" {
		log.Fatal("chat-backend: -hook-secret and -api-token are required")
	}
	chat := &Chat{Gateway: *gateway, APIToken: *apiToken, Client: &http.Client{Timeout: 5 * time.Second}}
	mux := http.NewServeMux()
	mux.Handle("POST /hook", chat.Handler([]byte(*secret)))
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("chat-backend: hooks on http://%s/hook, emitting through %s", *addr, *gateway)
	log.Fatal(srv.ListenAndServe())
}
