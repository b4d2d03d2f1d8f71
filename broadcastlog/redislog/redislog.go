// Package redislog is the broadcast log in Redis Streams: one stream per
// namespace, <prefix>:log:{<namespace>}, trimmed by age (MINID, the
// retention) and length (MAXLEN, approximate). The hash tag puts a
// namespace's log on one Cluster shard; see docs/ARCHITECTURE.md for why
// one stream per namespace and what that costs on a Cluster.
//
// A stream that did not exist (first use, or Redis lost it) is created
// with its max-deleted-entry-id set to the current time, so that a
// position handed out before the loss reads as expired, never as a log
// with a hole.
package redislog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/broadcastlog"
)

var _ broadcastlog.Log = (*Log)(nil)

// Config configures New.
type Config struct {
	// Client is the Redis connection (standalone, Sentinel or Cluster,
	// Redis 7 or later). Required; Close does not close it.
	Client redis.UniversalClient
	// Prefix starts every key. Defaults to "socket.io".
	Prefix string
	// Retention bounds the age of entries. Defaults to
	// broadcastlog.DefaultRetention.
	Retention time.Duration
	// MaxLen caps each namespace's stream (approximately). Defaults to
	// broadcastlog.DefaultMaxLen.
	MaxLen int64
	// Block is how long one XREAD of a tail waits. It is sent in a
	// pipeline, read with the Client's ReadTimeout: keep it below that.
	// Defaults to 1 second.
	Block time.Duration
	// Linger is the least time between the starts of two reads of a busy
	// tail, one whose last read returned at least BusyBatch entries: the
	// entries that arrive meanwhile are read and delivered together, so
	// that a socket's writer sends them in one write instead of waking
	// once per read. A tail that keeps up (reads of fewer entries) reads
	// again at once. Defaults to 20ms; negative: never wait.
	Linger time.Duration
	// BusyBatch is the size of a read from which a tail lingers before
	// the next. Defaults to 8.
	BusyBatch int
}

// Log is the broadcast log in Redis Streams.
type Log struct {
	cfg Config
	// appender is the client of Append: Client's Redis, without retries.
	appender      redis.UniversalClient
	closeAppender func() error
	ctx           context.Context
	cancel        context.CancelFunc
	wg            sync.WaitGroup

	// AppendAsync's queue: a goroutine (flushAppends) exists while it is
	// not empty, sending what is queued as one pipeline per round trip.
	appendMu  sync.Mutex
	queued    []queuedAppend
	appending bool
}

type queuedAppend struct {
	key  string
	args []any
	done func(string, error)
}

// New returns a Log on cfg.Client.
func New(cfg Config) (*Log, error) {
	if cfg.Client == nil {
		return nil, errors.New("redislog: Config.Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "socket.io"
	}
	if cfg.Retention <= 0 {
		cfg.Retention = broadcastlog.DefaultRetention
	}
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = broadcastlog.DefaultMaxLen
	}
	if cfg.Block <= 0 {
		cfg.Block = time.Second
	}
	if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.BusyBatch <= 0 {
		cfg.BusyBatch = defaultBusyBatch
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Log{cfg: cfg, ctx: ctx, cancel: cancel, appender: cfg.Client}
	l.appender, l.closeAppender = onceOnly(cfg.Client)
	return l, nil
}

// onceOnly returns a client on c's Redis that never retries a command:
// go-redis retries a command whose connection broke, and an append whose
// reply was lost in a Redis restart (it was executed, and kept by an AOF)
// would be logged twice: delivered twice. An append that fails is reported
// instead (the caller answers unavailable; the broadcast may still have
// been logged). For clients it cannot copy it returns c.
func onceOnly(c redis.UniversalClient) (redis.UniversalClient, func() error) {
	switch c := c.(type) {
	case *redis.Client:
		o := *c.Options()
		o.MaxRetries = -1
		n := redis.NewClient(&o)
		return n, n.Close
	case *redis.ClusterClient:
		o := *c.Options()
		o.MaxRetries = -1
		n := redis.NewClusterClient(&o)
		return n, n.Close
	}
	return c, func() error { return nil }
}

func (l *Log) key(nsp string) string { return l.cfg.Prefix + ":log:{" + nsp + "}" }

func unavailable(err error) error {
	if errors.Is(err, broadcastlog.ErrExpired) || errors.Is(err, broadcastlog.ErrClosed) {
		return err
	}
	return fmt.Errorf("%w: %v", broadcastlog.ErrUnavailable, err)
}

// ensure is the Lua prelude that creates a missing stream whose
// max-deleted-entry-id is now: positions from before it are expired.
const ensure = `
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', key) == 0 then
  redis.call('XADD', key, 'MAXLEN', '0', '0-1', 'g', '1')
  local floor = (now - 1) .. '-0'
  redis.call('XSETID', key, floor, 'ENTRIESADDED', '1', 'MAXDELETEDID', floor)
  redis.call('PEXPIRE', key, ARGV[1])
end
`

// appendScript: ARGV = ttl ms, retention ms, maxlen, fields...
//
// Redis counts the entries XDEL removes in the stream's
// max-deleted-entry-id, not those trimming removes (XADD MINID, XTRIM; seen
// on 7.0): after a trim the script moves it to just before the oldest
// entry left, so that Read and the tails, which compare positions with it,
// see what was trimmed. Approximate trimming drops whole stream nodes, so
// this runs about once per hundred appends.
var appendScript = redis.NewScript(ensure + `
local before = redis.call('XLEN', key)
local minid = (now - tonumber(ARGV[2])) .. '-0'
local args = {'XADD', key, 'MINID', '~', minid, '*'}
for i = 4, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
local len = redis.call('XLEN', key)
if len > tonumber(ARGV[3]) then
  redis.call('XTRIM', key, 'MAXLEN', '~', ARGV[3])
  len = redis.call('XLEN', key)
end
if len <= before then
  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1][1]
  local ms, seq = string.match(first, '^(%d+)-(%d+)$')
  local floor
  if seq ~= '0' then
    floor = ms .. '-' .. tostring(tonumber(seq) - 1)
  else
    floor = tostring(tonumber(ms) - 1) .. '-18446744073709551615'
  end
  redis.call('XSETID', key, id, 'MAXDELETEDID', floor)
end
redis.call('PEXPIRE', key, ARGV[1])
return id
`)

// lastScript returns the last generated id, creating the stream.
var lastScript = redis.NewScript(ensure + `
local info = redis.call('XINFO', 'STREAM', key)
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return info[i + 1] end
end
return '0-0'
`)

func (l *Log) ttl() string { return strconv.FormatInt((2 * l.cfg.Retention).Milliseconds(), 10) }

// Append implements broadcastlog.Log.
func (l *Log) Append(ctx context.Context, nsp string, e broadcastlog.Entry) (string, error) {
	if l.ctx.Err() != nil {
		return "", broadcastlog.ErrClosed
	}
	id, err := appendScript.Run(ctx, l.appender, []string{l.key(nsp)}, l.appendArgs(e)...).Text()
	if err != nil {
		return "", unavailable(err)
	}
	return id, nil
}

func (l *Log) appendArgs(e broadcastlog.Entry) []any {
	rooms, _ := json.Marshal(nonNil(e.Rooms))
	except, _ := json.Marshal(nonNil(e.Except))
	args := []any{l.ttl(), l.cfg.Retention.Milliseconds(), l.cfg.MaxLen,
		"r", rooms, "x", except, "d", []byte(e.Data)}
	for i, a := range e.Attachments {
		args = append(args, "a"+strconv.Itoa(i), a)
	}
	return args
}

// Bounds of AppendAsync: the appends of one round trip, and its time.
const (
	maxAppendBatch = 512
	appendTimeout  = 5 * time.Second
)

// AppendAsync implements broadcastlog.AsyncAppender: the appends queued
// while a round trip is in flight go in the next one, as one pipeline of
// the append script (one round trip for many publishes instead of one
// each), in queue order. Like Append, an append is never retried: one
// whose reply was lost is reported unavailable (it may have been logged).
func (l *Log) AppendAsync(nsp string, e broadcastlog.Entry, done func(string, error)) {
	args := l.appendArgs(e)
	l.appendMu.Lock()
	if l.ctx.Err() != nil {
		l.appendMu.Unlock()
		done("", broadcastlog.ErrClosed)
		return
	}
	l.queued = append(l.queued, queuedAppend{key: l.key(nsp), args: args, done: done})
	start := !l.appending
	l.appending = true
	if start {
		l.wg.Add(1)
	}
	l.appendMu.Unlock()
	if start {
		go l.flushAppends()
	}
}

// flushAppends sends the queued appends, a pipeline per round trip, until
// the queue is empty.
func (l *Log) flushAppends() {
	defer l.wg.Done()
	var batch []queuedAppend
	for {
		l.appendMu.Lock()
		n := min(len(l.queued), maxAppendBatch)
		if n == 0 {
			l.appending = false
			l.appendMu.Unlock()
			return
		}
		batch = append(batch[:0], l.queued[:n]...)
		clear(l.queued[:n])
		l.queued = l.queued[n:]
		if len(l.queued) == 0 {
			l.queued = nil
		}
		l.appendMu.Unlock()
		l.sendAppends(batch)
		clear(batch)
	}
}

func (l *Log) sendAppends(batch []queuedAppend) {
	ctx, cancel := context.WithTimeout(l.ctx, appendTimeout)
	defer cancel()
	pipe := l.appender.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, a := range batch {
		cmds[i] = appendScript.EvalSha(ctx, pipe, []string{a.key}, a.args...)
	}
	_, _ = pipe.Exec(ctx) // each command's own error is read below
	for i, a := range batch {
		id, err := cmds[i].Text()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// Not run (Redis lost its scripts): loading and running it
			// once is safe.
			id, err = appendScript.Run(ctx, l.appender, []string{a.key}, a.args...).Text()
		}
		if err != nil {
			if l.ctx.Err() != nil {
				err = broadcastlog.ErrClosed
			}
			a.done("", unavailable(err))
			continue
		}
		a.done(id, nil)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Last implements broadcastlog.Log.
func (l *Log) Last(ctx context.Context, nsp string) (string, error) {
	if l.ctx.Err() != nil {
		return "", broadcastlog.ErrClosed
	}
	id, err := lastScript.Run(ctx, l.cfg.Client, []string{l.key(nsp)}, l.ttl()).Text()
	if err != nil {
		return "", unavailable(err)
	}
	return id, nil
}

// Read implements broadcastlog.Log. It reads the range first, then the
// stream's trim floor: if nothing after the position was trimmed when the
// floor was read, nothing was when the range was.
func (l *Log) Read(ctx context.Context, nsp, after string, limit int) ([]broadcastlog.Entry, error) {
	if after == "" {
		msgs, err := l.cfg.Client.XRangeN(ctx, l.key(nsp), "-", "+", int64(broadcastlog.ClampLimit(limit))).Result()
		if err != nil {
			return nil, unavailable(err)
		}
		return entries(msgs), nil
	}
	p, err := broadcastlog.ParsePosition(after)
	if err != nil {
		return nil, err
	}
	if l.ctx.Err() != nil {
		return nil, broadcastlog.ErrClosed
	}
	key := l.key(nsp)
	pipe := l.cfg.Client.TxPipeline()
	rng := pipe.XRangeN(ctx, key, "("+after, "+", int64(broadcastlog.ClampLimit(limit)))
	info := pipe.XInfoStream(ctx, key)
	_, err = pipe.Exec(ctx)
	if err != nil && !isNoSuchKey(info.Err()) {
		return nil, unavailable(err)
	}
	if info.Err() != nil { // no stream: nothing was ever appended, or Redis lost it
		if p == (broadcastlog.Position{}) {
			return nil, nil
		}
		return nil, broadcastlog.ErrExpired
	}
	st := info.Val()
	deleted, _ := broadcastlog.ParsePosition(st.MaxDeletedEntryID)
	last, _ := broadcastlog.ParsePosition(st.LastGeneratedID)
	if p.Less(deleted) || last.Less(p) {
		return nil, broadcastlog.ErrExpired
	}
	return entries(rng.Val()), nil
}

func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}

// entries decodes stream entries. An entry whose fields do not decode (room
// lists that are not JSON string arrays, data that is not a JSON array) is
// skipped, never delivered: a room list read as empty would select the whole
// namespace. The creation marker has no data and is skipped too.
func entries(msgs []redis.XMessage) []broadcastlog.Entry {
	out := make([]broadcastlog.Entry, 0, len(msgs))
	for _, m := range msgs {
		if e, ok := decodeEntry(m); ok {
			out = append(out, e)
		}
	}
	return out
}

// decodeList decodes a JSON string array field into dst.
func decodeList(v any, dst *[]string) bool {
	s, ok := v.(string)
	return ok && json.Unmarshal([]byte(s), dst) == nil
}

func decodeEntry(m redis.XMessage) (broadcastlog.Entry, bool) {
	e := broadcastlog.Entry{ID: m.ID}
	d, ok := m.Values["d"].(string)
	if !ok || len(d) < 2 || d[0] != '[' {
		return e, false
	}
	if e.Data = json.RawMessage(d); !json.Valid(e.Data) {
		return e, false
	}
	// Append always writes both lists; a missing one is a damaged entry.
	if !decodeList(m.Values["r"], &e.Rooms) || !decodeList(m.Values["x"], &e.Except) {
		return e, false
	}
	for i := 0; ; i++ {
		s, ok := m.Values["a"+strconv.Itoa(i)].(string)
		if !ok {
			break
		}
		e.Attachments = append(e.Attachments, []byte(s))
	}
	return e, true
}

// Tail implements broadcastlog.Log: one goroutine reading the stream with
// XREAD BLOCK; after a Redis error it retries (backing off up to
// tailMaxBackoff) from where it was, and reports ErrExpired if entries were
// trimmed meanwhile.
//
// Every XREAD is pipelined after an XINFO STREAM of the same stream, on
// the same connection (go-redis retries a pipeline whole, on one new
// connection): so the XREAD's cursor is checked against the very stream it
// reads. A Redis that restarted without the stream, or with entries after
// the cursor trimmed, is a gap (ErrExpired), never an XREAD that carries
// on silently in a new stream. A PEXPIRE in the same round trip keeps the
// stream alive while a node tails it, so that an idle namespace's stream
// does not expire under its tail and read as lost.
func (l *Log) Tail(ctx context.Context, nsp, after string, fn func([]broadcastlog.Entry, error)) (func(), error) {
	if _, err := broadcastlog.ParsePosition(after); err != nil {
		return nil, err
	}
	if l.ctx.Err() != nil {
		return nil, broadcastlog.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.ctx, cancel)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer stop()
		l.tail(ctx, nsp, after, fn)
	}()
	return cancel, nil
}

// DefaultLinger and defaultBusyBatch are the defaults of a tail's batching
// (Config.Linger, Config.BusyBatch).
//
// The cost of delivering a read grows with the sockets it reaches: each
// is handed the read's entries and its writer woken for one write, for
// one entry or for fifty. A tail that reads as fast as it delivers reads
// small batches, so at saturation most of a node's CPU went to those
// per-socket wake-ups and writes (scripts/bench.sh's 2-node fan-out: a
// read every ~12ms of ~10 entries, ~11 deliveries per write(2); with a
// 20ms linger ~20 entries and ~18 deliveries per write, ~25% less CPU
// per delivery; docs/ARCHITECTURE.md, "The broadcast log"). Waiting
// between reads only when reads come back with many entries (the tail is
// behind anyway) makes the batches bigger where it pays, and adds nothing
// to the latency of a namespace that the tail keeps up with.
const (
	DefaultLinger    = 20 * time.Millisecond
	defaultBusyBatch = 8
)

// Backoff of a tail that cannot reach Redis: a quick first retry, then
// doubling to a short cap, so that live delivery resumes soon after Redis
// returns (see docs/OPERATIONS.md).
const (
	tailMinBackoff = 10 * time.Millisecond
	tailMaxBackoff = 250 * time.Millisecond
)

func (l *Log) tail(ctx context.Context, nsp, cursor string, fn func([]broadcastlog.Entry, error)) {
	key := l.key(nsp)
	backoff := tailMinBackoff
	var busySince time.Time // start of the last read, when it was busy
	for ctx.Err() == nil {
		if !busySince.IsZero() {
			if !l.linger(ctx, busySince) {
				return
			}
			busySince = time.Time{}
		}
		started := time.Now()
		pipe := l.cfg.Client.Pipeline()
		pipe.PExpire(ctx, key, 2*l.cfg.Retention)
		info := pipe.XInfoStream(ctx, key)
		read := pipe.XRead(ctx, &redis.XReadArgs{
			Streams: []string{key, cursor}, Count: 1000, Block: l.cfg.Block,
		})
		_, err := pipe.Exec(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, redis.Nil) && !isNoSuchKey(err) {
			// Redis unreachable: a failed pipeline need not set every
			// command's error, so nothing in it is trusted.
			l.sleep(ctx, &backoff)
			continue
		}
		if err := info.Err(); (err != nil && !isNoSuchKey(err)) || (err == nil && info.Val().LastGeneratedID == "") {
			l.sleep(ctx, &backoff)
			continue
		}
		if gap(info, cursor) {
			// Redis lost the stream or trimmed entries the tail had not
			// read: go on from the end, after telling fn.
			last, err := l.Last(ctx, nsp)
			if err != nil {
				l.sleep(ctx, &backoff)
				continue
			}
			fn(nil, broadcastlog.ErrExpired)
			cursor = last
			continue
		}
		res, err := read.Result()
		switch {
		case errors.Is(err, redis.Nil):
			backoff = tailMinBackoff
			continue
		case err != nil:
			l.sleep(ctx, &backoff)
			continue
		}
		backoff = tailMinBackoff
		for _, s := range res {
			if len(s.Messages) == 0 {
				continue
			}
			cursor = s.Messages[len(s.Messages)-1].ID
			if batch := entries(s.Messages); len(batch) > 0 {
				fn(batch, nil)
			}
			if len(s.Messages) >= l.cfg.BusyBatch {
				busySince = started
			}
		}
	}
}

// linger waits until Config.Linger after since (the start of a busy
// read); it reports false when ctx ended meanwhile.
func (l *Log) linger(ctx context.Context, since time.Time) bool {
	d := l.cfg.Linger - time.Since(since)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// gap reports whether the stream info (read just before an XREAD after
// cursor, on the same connection) says entries after cursor are missing:
// the stream is gone, was trimmed past cursor, or restarted before it.
func gap(info *redis.XInfoStreamCmd, cursor string) bool {
	if info.Err() != nil {
		return true // no such key: Redis lost it (the tail keeps it alive)
	}
	p, err := broadcastlog.ParsePosition(cursor)
	if err != nil {
		return true
	}
	st := info.Val()
	deleted, _ := broadcastlog.ParsePosition(st.MaxDeletedEntryID)
	last, _ := broadcastlog.ParsePosition(st.LastGeneratedID)
	return p.Less(deleted) || last.Less(p)
}

func (l *Log) sleep(ctx context.Context, backoff *time.Duration) {
	select {
	case <-time.After(*backoff):
	case <-ctx.Done():
	}
	*backoff = min(2**backoff, tailMaxBackoff)
}

// Close implements broadcastlog.Log: it ends every tail.
func (l *Log) Close() error {
	l.appendMu.Lock() // no AppendAsync starts a flush after this
	l.cancel()
	l.appendMu.Unlock()
	l.wg.Wait()
	return l.closeAppender()
}
