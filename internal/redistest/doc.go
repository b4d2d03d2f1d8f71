// Package redistest starts real redis-server processes for tests: a
// standalone server (Start) or a three-master Redis Cluster (StartCluster),
// on free loopback ports (never 6379), with their files in t.TempDir() and
// their processes stopped by t.Cleanup. Kill and Restart simulate a Redis
// crash and its return on the same port, for fault tests.
//
// Tests are skipped when redis-server (or, for clusters, redis-cli) is not
// installed; $REDIS_SERVER and $REDIS_CLI name other binaries.
//
// # Concurrency
//
// A Server's methods are safe for concurrent use. Each running process has
// one goroutine waiting for it to exit; Kill, Restart and the cleanup
// registered by Start end it.
package redistest
