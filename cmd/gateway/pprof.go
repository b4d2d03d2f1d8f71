//go:build pprof

// A profiling build (go build -tags pprof) serves net/http/pprof on
// ROOMCAST_PPROF_ADDR (default 127.0.0.1:6060), for the per-connection
// measurements in docs/BENCHMARKS.md (scripts/idle-profile.sh). Release
// builds do not link it.
package main

import (
	"log"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("ROOMCAST_PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() { log.Println(http.ListenAndServe(addr, nil)) }()
}
