// Package ratelimit limits what an identity may do, across reconnects and,
// with Redis, across the nodes of a cluster. Keys are identities chosen by
// the caller ("user:alice", "ip:203.0.113.7", "connect-ip:…"), not sockets:
// a client that reconnects finds its key's state where it left it.
//
// # Rate limits
//
// A Limiter gives every key a token bucket: Rate tokens per second, up to
// Burst. Allow(key, cost) spends cost tokens (a failed CONNECT may cost 5
// where an event costs 1) or refuses, with a retry-after hint; a refused
// call costs nothing. A cost larger than Burst is admitted only from a full
// bucket, which it leaves in debt. A Rate of 0 means unlimited: Allow always
// returns true and nothing is tracked.
//
// Buckets live in a 64-way sharded map. A sweeper drops buckets that are
// full again (an idle key is the same as an unknown one), so memory follows
// the keys active in the last SweepInterval plus Burst/Rate. MaxKeys is a
// hard cap: a new key in a full shard evicts the least recently used of a
// few sampled keys of that shard, which starts again from a full bucket if
// it returns. A flood of new identities therefore cannot grow memory, nor
// lock out or unlimit anyone; at worst it gives evicted idle-ish keys a
// fresh burst, which each of the flood's own keys has anyway.
//
// MemoryLimiter is the single-node Limiter. RedisLimiter adds a cluster-wide
// bound without putting Redis on the hot path: Allow decides from the local
// bucket alone, and records what it admitted. Every SyncInterval (100 ms) a
// goroutine sends each key's recorded cost in one pipeline,
//
//	INCRBYFLOAT <prefix>:rl:{<key>}:<window> <cost>
//	PEXPIRE     <prefix>:rl:{<key>}:<window> 2×Window
//
// where <window> is the Unix time divided by Window (10 s), and reads back
// the cluster-wide totals. A key whose total exceeds Rate × Window + Burst
// is refused on this node until the window ends. Every command touches one
// key, so the keys work on Redis Cluster (a ClusterClient splits the
// pipeline by node).
//
// # Limits of the model
//
// Nodes learn of each other's spending only at their syncs. Over a window, a
// key spread over N nodes is held to Rate × Window + Burst plus what the
// nodes admit between the total crossing the allowance and each of them
// learning it: about N × Rate × SyncInterval when the key is already busy
// everywhere, and at most N × (Burst + Rate × SyncInterval) when it
// arrives fresh on every node at once. On one node the local bucket always
// holds: nobody gets more than Rate × t + Burst from one node. Windows are
// fixed and aligned on the wall clock, so a key can spend its allowance at
// the end of one window and again at the start of the next (the local
// buckets still apply), and nodes need roughly synchronised clocks.
//
// When Redis fails, the sync's cost is dropped, OnError is called and
// Stats().Degraded is set; limiting goes on from the local buckets (so the
// cluster bound becomes N × the per-node bound). It never fails open to
// unlimited and Allow never waits. The flag clears at the next sync that
// succeeds.
//
// # Connection caps
//
// A Counter caps the connections a key holds: Acquire(ctx, key, max)
// returns a release func or ErrTooMany. MemoryCounter is the single-node
// one. RedisCounter keeps one hash per key with a field per node,
// <prefix>:conns:{<key>} <node> <count>, and counts only the fields of the
// nodes the caller says are alive (its registry of leases), so a crashed
// node's connections stop counting when its lease expires. Acquire is one
// script call: sum the live fields, increment this node's if under the cap.
// When Redis fails, Acquire fails open to a per-node cap (at most max per
// node) and reports the error: refusing every connection whenever Redis
// blips would turn a Redis incident into an outage. A release that cannot
// reach Redis is queued and retried.
//
// # Client addresses
//
// ClientIP reads the client's address from a request, believing
// X-Forwarded-For only as far as trusted proxies wrote it; ParsePrefixes
// reads the list of trusted proxies from a flag.
//
// # Concurrency
//
// Every exported method is safe for concurrent use. Allow takes one shard's
// mutex and never does I/O; Acquire and release do one Redis round trip
// (bounded by RedisCounterConfig.Timeout) and hold no lock across it. Locks
// are never nested: the sweeper, the sync goroutine and Stats take the shard
// mutexes one at a time; RedisCounter's queue mutex and its local counter's
// shard mutexes are not held together.
//
// Goroutines and their owner: MemoryLimiter runs a sweeper, RedisLimiter a
// sweeper and a sync loop, RedisCounter a release retry loop; each is
// stopped, and waited for, by its owner's Close. MemoryCounter has none. An
// unlimited limiter (Rate 0) starts none. Callbacks (OnError) run on those
// goroutines, or on Acquire's caller, and must not block.
package ratelimit
