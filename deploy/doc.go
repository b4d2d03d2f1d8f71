// Package deploy holds Roomcast's deployment files and the tests that keep
// them honest. It has no Go API: the package exists for its tests.
//
//	Dockerfile                 multi-stage image: client bundle (npm ci), static gateway, distroless, USER 65532
//	docker-compose.yml         Redis (AOF), gateway-1..3, HAProxy, Prometheus, Grafana, k6 (profile "loadtest")
//	haproxy.cfg                HTTP balancer, /readyz health checks, stickiness for Engine.IO sessions only
//	prometheus.yml, alerts.yml scrape configuration and alert rules (unit-tested in testdata/alerts_test.yml)
//	grafana/                   provisioned data source and the "Roomcast" dashboard
//
// scripts/cluster.sh (`make cluster`) runs the same topology from local
// binaries; its end-to-end test lives here too.
//
// What the tests check: the compose file's services, mounts and ROOMCAST_*
// variables (each must be a gateway flag); the Dockerfile's stages and that
// its build flags give a static binary; `promtool check config`, `promtool
// check rules` and `promtool test rules`; that every metric an alert or a
// dashboard panel uses is exported by the gateway; `haproxy -c`; and, unless
// -short, a real cluster (redis-server, three gateways, haproxy, prometheus)
// started by scripts/cluster.sh, with clients on different nodes talking to
// each other through HAProxy over WebSocket and long-polling. Tools that are
// not installed (promtool, haproxy, redis-server) make the tests that need
// them skip, saying so; scripts/install-deps.sh installs them.
//
// Concurrency: the tests start external processes (go build, promtool,
// haproxy, scripts/cluster.sh and what it runs) and stop every one of them in
// t.Cleanup; HTTP clients close their idle connections the same way.
package deploy
