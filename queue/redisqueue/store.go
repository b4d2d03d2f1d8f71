package redisqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/metrics"
	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/core"
)

// meter is embedded under this unexported name: see core.Meter.
type meter = core.Meter

var _ queue.Store = (*Store)(nil)

// Config configures New.
type Config struct {
	// Client is the Redis connection: standalone, Sentinel or Cluster
	// (Redis 7 or later). Required; Close does not close it.
	Client redis.UniversalClient
	// Prefix starts every key and channel. Defaults to "socket.io".
	Prefix string
	// MaxLen bounds the entries of each user's stream (exactly): an Append
	// to a full stream is refused for that user (queue.ErrQueueFull).
	// Defaults to 10000.
	MaxLen int64
	// MaxBytes bounds the payload bytes (queue.Message.Size) of each user's
	// stream (exactly, kept in a counter beside the stream), refusing like
	// MaxLen. Defaults to 1 MiB.
	MaxBytes int64
	// Retention bounds the age of entries (MINID trimming by the time part
	// of their IDs), and a stream nobody appended to for Retention expires.
	// Offsets older than Retention are expired. Defaults to 24h.
	Retention time.Duration
	// MaxMembers bounds each durable room. Defaults to 10000.
	MaxMembers int
	// Metrics records command durations, errors, appends and replays.
	// Defaults to none.
	Metrics *metrics.Metrics
	// Logger reports pub/sub connection loss and recovery. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// Store is the queue.Store backed by Redis Streams, one stream per user, with
// live delivery through sharded pub/sub (SPUBLISH/SSUBSCRIBE).
//
// Keys, all hash-tagged so that a user's stream and live channel share a
// Cluster slot:
//
//	<prefix>:stream:{<user>}   stream of the user's durable messages
//	<prefix>:live:{<user>}     pub/sub channel of their live deliveries
//	<prefix>:bytes:{<user>}    sum of the sizes of the stream's entries
//	<prefix>:epoch:{<user>}    when Redis first knew the user (Last, Read), kept
//	                           for the retention: lost with the stream when Redis
//	                           loses its data, so a missing stream is not taken
//	                           for an empty history
//	<prefix>:session:{<pid>}   JSON queue.Session, with a TTL
//	<prefix>:members:{<room>}  sorted set of a durable room's member users
type Store struct {
	meter // queue.Replay counts into the Store's metrics through it

	client     redis.UniversalClient
	prefix     string
	maxLen     string
	maxBytes   int64
	retention  int64 // ms
	maxMembers int
	met        *metrics.Metrics
	log        *slog.Logger

	hub *hub

	mu     sync.Mutex
	closed bool
}

// New returns a Store on cfg.Client. It does not contact Redis; use
// Ready for that.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: Config.Client is nil", queue.ErrInvalidArgument)
	}
	if cfg.MaxLen < 0 || cfg.MaxBytes < 0 || cfg.Retention < 0 || cfg.MaxMembers < 0 {
		return nil, fmt.Errorf("%w: negative bound in Config", queue.ErrInvalidArgument)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "socket.io"
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = queue.DefaultMaxLen
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = queue.DefaultMaxBytes
	}
	if cfg.Retention == 0 {
		cfg.Retention = queue.DefaultRetention
	}
	if cfg.MaxMembers == 0 {
		cfg.MaxMembers = queue.DefaultMaxMembers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Store{
		meter:      core.NewMeter(cfg.Metrics),
		client:     cfg.Client,
		prefix:     cfg.Prefix,
		maxLen:     strconv.FormatInt(cfg.MaxLen, 10),
		maxBytes:   cfg.MaxBytes,
		retention:  max(cfg.Retention.Milliseconds(), 1),
		maxMembers: cfg.MaxMembers,
		met:        cfg.Metrics,
		log:        cfg.Logger,
	}
	r.hub = newHub(r)
	return r, nil
}

func (r *Store) streamKey(user string) string   { return r.prefix + ":stream:{" + user + "}" }
func (r *Store) liveChannel(user string) string { return r.prefix + ":live:{" + user + "}" }
func (r *Store) bytesKey(user string) string    { return r.prefix + ":bytes:{" + user + "}" }
func (r *Store) epochKey(user string) string    { return r.prefix + ":epoch:{" + user + "}" }

// onceKey records the entry ID appended to user's stream under an
// idempotency key (queue.WithIdempotencyKey).
func (r *Store) onceKey(user, key string) string { return r.prefix + ":once:{" + user + "}:" + key }
func (r *Store) sessionKey(pid string) string    { return r.prefix + ":session:{" + pid + "}" }
func (r *Store) membersKey(room string) string   { return r.prefix + ":members:{" + room + "}" }

// memberOfKey is the set of the durable rooms a user was made a member of:
// the reverse index that MemberOf reads. It lives in the user's slot, the
// room's members in the room's, so the two are updated one after the other,
// in an order that keeps the index a superset of the memberships (see
// AddMember and unindex).
func (r *Store) memberOfKey(user string) string { return r.prefix + ":memberof:{" + user + "}" }

func (r *Store) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// unavailable wraps a Redis failure.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", queue.ErrUnavailable, op, err)
}

// Append implements queue.Store: one script run per distinct user, pipelined.
func (r *Store) Append(ctx context.Context, users []string, msg queue.Message) ([]string, error) {
	uniq, pos, err := core.Dedupe(users)
	if err != nil {
		return nil, err
	}
	if r.isClosed() {
		return nil, queue.ErrClosed
	}
	if len(uniq) == 0 {
		return []string{}, nil
	}
	atts := encodeAttachments(msg.Attachments)
	args := []any{r.maxLen, r.retention, msg.Namespace, msg.Event, []byte(msg.Data), atts, r.maxBytes, msg.Size()}
	if atts == nil {
		args[5] = ""
	}
	script, keys := appendScript, r.appendKeys
	if key, window := queue.IdempotencyKey(ctx); key != "" {
		// The key's record and the append are one script run.
		script = appendOnceScript
		args = append(args, window.Milliseconds())
		keys = func(user string) []string { return append(r.appendKeys(user), r.onceKey(user, key)) }
	}
	ids := make([]string, len(uniq))
	errs := make([]error, len(uniq))
	start := time.Now()
	if len(uniq) == 1 {
		ids[0], errs[0] = script.Run(ctx, r.client, keys(uniq[0]), args...).Text()
	} else {
		cmds, _ := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, u := range uniq {
				script.EvalSha(ctx, p, keys(u), args...)
			}
			return nil
		})
		for i, c := range cmds {
			ids[i], errs[i] = c.(*redis.Cmd).Text()
			if errs[i] != nil && redis.HasErrorPrefix(errs[i], "NOSCRIPT") {
				// The script cache is empty (Redis restarted): EVAL loads it.
				ids[i], errs[i] = script.Eval(ctx, r.client, keys(uniq[i]), args...).Text()
			}
		}
	}
	var firstErr error
	ok, failed := 0, false
	for i, e := range errs {
		switch {
		case errors.Is(e, redis.Nil): // the script's false: the stream is full
			ids[i] = ""
			errs[i] = fmt.Errorf("%w: %q", queue.ErrQueueFull, uniq[i])
			failed = true
		case e != nil:
			ids[i] = ""
			errs[i] = unavailable(fmt.Sprintf("append to %q", uniq[i]), e)
			failed = true
			if firstErr == nil {
				firstErr = errs[i]
			}
		default:
			ok++
		}
	}
	observeRedis(r.met, "xadd", start, firstErr)
	core.CountAppends(r.met, ok)
	if !failed {
		return core.Spread(ids, pos), nil
	}
	perUser := make([]error, len(pos))
	for i, p := range pos {
		perUser[i] = errs[p]
	}
	return core.Spread(ids, pos), &queue.AppendError{Errs: perUser}
}

func (r *Store) appendKeys(user string) []string {
	return []string{r.streamKey(user), r.liveChannel(user), r.bytesKey(user)}
}

// Read implements queue.Store.
func (r *Store) Read(ctx context.Context, user, after string, limit int) ([]queue.Message, error) {
	if _, err := core.ParseID(after); err != nil {
		return nil, err
	}
	if user == "" {
		return nil, fmt.Errorf("%w: empty user", queue.ErrInvalidArgument)
	}
	if r.isClosed() {
		return nil, queue.ErrClosed
	}
	start := time.Now()
	res, err := readScript.Run(ctx, r.client, []string{r.streamKey(user), r.epochKey(user)}, after, core.ClampLimit(limit), r.retention).Slice()
	observeRedis(r.met, "xrange", start, err)
	if err != nil {
		return nil, unavailable(fmt.Sprintf("read %q", user), err)
	}
	if len(res) == 0 {
		return nil, unavailable("read", errors.New("empty script reply"))
	}
	if st, _ := res[0].(int64); st == 1 {
		return nil, fmt.Errorf("%w: %q after %s", queue.ErrOffsetExpired, user, after)
	}
	if len(res) < 2 {
		return nil, nil
	}
	entries, _ := res[1].([]any)
	if len(entries) == 0 {
		return nil, nil
	}
	out := make([]queue.Message, 0, len(entries))
	for _, e := range entries {
		pair, _ := e.([]any)
		if len(pair) != 2 {
			return nil, unavailable("read", errFrame)
		}
		id, _ := pair[0].(string)
		fields, _ := pair[1].([]any)
		m, err := decodeEntry(id, fields)
		if err != nil {
			return nil, unavailable(fmt.Sprintf("read %q entry %s", user, id), err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Last implements queue.Store.
func (r *Store) Last(ctx context.Context, user string) (string, error) {
	if user == "" {
		return "", fmt.Errorf("%w: empty user", queue.ErrInvalidArgument)
	}
	if r.isClosed() {
		return "", queue.ErrClosed
	}
	start := time.Now()
	id, err := lastScript.Run(ctx, r.client, []string{r.streamKey(user), r.epochKey(user)}, r.retention).Text()
	observeRedis(r.met, "xrange", start, err)
	if err != nil {
		return "", unavailable(fmt.Sprintf("last %q", user), err)
	}
	if _, err := core.ParseID(id); err != nil {
		return "", unavailable("last", err)
	}
	return id, nil
}

// Subscribe implements queue.Store. All subscriptions of a Store share one
// pub/sub connection (one per master node on a Cluster). It returns once
// Redis confirmed the subscription, or with ctx's error.
func (r *Store) Subscribe(ctx context.Context, user string, fn func(queue.Message, error)) (func(), error) {
	if user == "" || fn == nil {
		return nil, fmt.Errorf("%w: empty user or nil fn", queue.ErrInvalidArgument)
	}
	return r.hub.subscribe(ctx, user, fn)
}

// SaveSession implements queue.Store.
func (r *Store) SaveSession(ctx context.Context, s queue.Session, ttl time.Duration) error {
	if s.PID == "" || ttl <= 0 {
		return fmt.Errorf("%w: empty pid or non-positive ttl", queue.ErrInvalidArgument)
	}
	if r.isClosed() {
		return queue.ErrClosed
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("%w: session data: %w", queue.ErrInvalidArgument, err)
	}
	start := time.Now()
	err = r.client.Set(ctx, r.sessionKey(s.PID), b, ttl).Err()
	observeRedis(r.met, "session", start, err)
	if err != nil {
		return unavailable("save session", err)
	}
	return nil
}

// LoadSession implements queue.Store.
func (r *Store) LoadSession(ctx context.Context, pid string) (queue.Session, error) {
	if pid == "" {
		return queue.Session{}, fmt.Errorf("%w: empty pid", queue.ErrInvalidArgument)
	}
	if r.isClosed() {
		return queue.Session{}, queue.ErrClosed
	}
	start := time.Now()
	b, err := r.client.Get(ctx, r.sessionKey(pid)).Bytes()
	if errors.Is(err, redis.Nil) {
		observeRedis(r.met, "session", start, nil)
		return queue.Session{}, queue.ErrSessionNotFound
	}
	observeRedis(r.met, "session", start, err)
	if err != nil {
		return queue.Session{}, unavailable("load session", err)
	}
	var s queue.Session
	if err := json.Unmarshal(b, &s); err != nil {
		return queue.Session{}, fmt.Errorf("%w: corrupt session %q: %w", queue.ErrSessionNotFound, pid, err)
	}
	return s, nil
}

// DeleteSession implements queue.Store.
func (r *Store) DeleteSession(ctx context.Context, pid string) error {
	if pid == "" {
		return fmt.Errorf("%w: empty pid", queue.ErrInvalidArgument)
	}
	if r.isClosed() {
		return queue.ErrClosed
	}
	start := time.Now()
	err := r.client.Del(ctx, r.sessionKey(pid)).Err()
	observeRedis(r.met, "session", start, err)
	if err != nil {
		return unavailable("delete session", err)
	}
	return nil
}

// AddMember implements queue.Store.
func (r *Store) AddMember(ctx context.Context, room, user string) error {
	if room == "" || user == "" {
		return fmt.Errorf("%w: empty room or user", queue.ErrInvalidArgument)
	}
	if r.isClosed() {
		return queue.ErrClosed
	}
	// Indexed before and after the membership: whatever a concurrent
	// RemoveMember of the same pair does in between, a membership that
	// stands is indexed (unindex re-checks after its SREM).
	start := time.Now()
	err := r.client.SAdd(ctx, r.memberOfKey(user), room).Err()
	observeRedis(r.met, "members", start, err)
	if err != nil {
		return unavailable("add member", err)
	}
	start = time.Now()
	n, err := addMemberScript.Run(ctx, r.client, []string{r.membersKey(room)}, user, r.maxMembers).Int()
	observeRedis(r.met, "members", start, err)
	if err != nil {
		return unavailable("add member", err)
	}
	if n == 0 {
		if err := r.unindex(ctx, room, user); err != nil {
			return err
		}
		return fmt.Errorf("%w: %q has %d members", queue.ErrRoomFull, room, r.maxMembers)
	}
	start = time.Now()
	err = r.client.SAdd(ctx, r.memberOfKey(user), room).Err()
	observeRedis(r.met, "members", start, err)
	if err != nil {
		return unavailable("add member", err)
	}
	return nil
}

// unindex takes room out of user's index once the membership is gone, and
// puts it back if a concurrent AddMember made user a member meanwhile.
func (r *Store) unindex(ctx context.Context, room, user string) error {
	start := time.Now()
	err := r.client.SRem(ctx, r.memberOfKey(user), room).Err()
	if err == nil {
		err = r.client.ZScore(ctx, r.membersKey(room), user).Err()
		switch {
		case errors.Is(err, redis.Nil):
			err = nil
		case err == nil:
			err = r.client.SAdd(ctx, r.memberOfKey(user), room).Err()
		}
	}
	observeRedis(r.met, "members", start, err)
	if err != nil {
		return unavailable("index members", err)
	}
	return nil
}

// MemberOf implements queue.Store: the rooms of the user's index that it
// is a member of.
func (r *Store) MemberOf(ctx context.Context, user string) ([]string, error) {
	if user == "" {
		return nil, fmt.Errorf("%w: empty user", queue.ErrInvalidArgument)
	}
	if r.isClosed() {
		return nil, queue.ErrClosed
	}
	start := time.Now()
	rooms, err := r.client.SMembers(ctx, r.memberOfKey(user)).Result()
	observeRedis(r.met, "members", start, err)
	if err != nil {
		return nil, unavailable("member of", err)
	}
	if len(rooms) == 0 {
		return []string{}, nil
	}
	start = time.Now()
	pipe := r.client.Pipeline()
	scores := make([]*redis.FloatCmd, len(rooms))
	for i, room := range rooms {
		scores[i] = pipe.ZScore(ctx, r.membersKey(room), user)
	}
	_, err = pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	observeRedis(r.met, "members", start, err)
	if err != nil {
		return nil, unavailable("member of", err)
	}
	out := rooms[:0]
	for i, room := range rooms {
		if scores[i].Err() == nil {
			out = append(out, room)
		}
	}
	slices.Sort(out)
	return out, nil
}

// RemoveMember implements queue.Store.
func (r *Store) RemoveMember(ctx context.Context, room, user string) error {
	if room == "" || user == "" {
		return fmt.Errorf("%w: empty room or user", queue.ErrInvalidArgument)
	}
	if r.isClosed() {
		return queue.ErrClosed
	}
	start := time.Now()
	err := r.client.ZRem(ctx, r.membersKey(room), user).Err()
	observeRedis(r.met, "members", start, err)
	if err != nil {
		return unavailable("remove member", err)
	}
	return r.unindex(ctx, room, user)
}

// Members implements queue.Store.
func (r *Store) Members(ctx context.Context, room string, limit int) ([]string, error) {
	if room == "" {
		return nil, fmt.Errorf("%w: empty room", queue.ErrInvalidArgument)
	}
	if r.isClosed() {
		return nil, queue.ErrClosed
	}
	stop := int64(-1)
	if limit > 0 {
		stop = int64(limit) - 1
	}
	start := time.Now()
	out, err := r.client.ZRange(ctx, r.membersKey(room), 0, stop).Result()
	observeRedis(r.met, "members", start, err)
	if err != nil {
		return nil, unavailable("members", err)
	}
	return out, nil
}

// Ready implements queue.Store: Redis answers PING and every live subscription
// is established (its pub/sub connections are up and confirmed them).
func (r *Store) Ready(ctx context.Context) error {
	if r.isClosed() {
		return queue.ErrClosed
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return r.hub.ready()
}

// Close implements queue.Store: it ends every subscription (their fn is called
// with queue.ErrClosed), closes the pub/sub connections and waits for the
// Store's goroutines. The Client stays open.
func (r *Store) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.hub.close()
	return nil
}
