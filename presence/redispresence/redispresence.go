package redispresence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/presence"
)

// Defaults of Config.
const (
	DefaultSweepInterval = 5 * time.Second
	DefaultStreamMaxLen  = 100000
	DefaultDedupeWindow  = 10 * time.Minute
)

// Config configures a Store.
type Config struct {
	// Client is the shared Redis. Required; the Store does not close it.
	Client redis.UniversalClient
	// Prefix starts every key (<Prefix>:presence:..., <Prefix>:events).
	// Defaults to "socket.io".
	Prefix string
	// Node is this node's id, as in the node registry. Required.
	Node string
	// Live returns the nodes holding a lease in the node registry. Every
	// SweepInterval the Store sweeps the nodes with entries that are not
	// in it. nil: no sweep.
	Live func(ctx context.Context) ([]string, error)
	// SweepInterval is how often the Store looks for nodes to sweep.
	// Defaults to DefaultSweepInterval.
	SweepInterval time.Duration
	// StreamMaxLen is the approximate bound of the event stream (XADD
	// MAXLEN ~). Defaults to DefaultStreamMaxLen.
	StreamMaxLen int64
	// DedupeWindow is how long appended event ids are remembered, so that
	// an event re-appended by a sweep is not appended twice. Defaults to
	// DefaultDedupeWindow.
	DedupeWindow time.Duration
	// Listener is told of the events this node decided (sweeps included)
	// once they are in the stream. Optional.
	Listener presence.Listener
	// OnLost is called (from the sweep loop) when this node's entries are
	// gone from Redis: it was swept while alive, or Redis lost its data.
	// The owner re-registers its sockets. Optional.
	OnLost func()
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Store is the Redis presence.Store.
type Store struct {
	cfg    Config
	rdb    redis.UniversalClient
	p      string // <Prefix>:presence
	stream string
	ids    string
	log    *slog.Logger

	seed  maphash.Seed
	locks [256]sync.Mutex // per room stripe: the node's rooms set and the room's scripts

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

var _ presence.Store = (*Store)(nil)

// New returns a Store after sweeping the entries a previous run of this
// node left behind, and starts its sweep loop.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Client == nil || cfg.Node == "" {
		return nil, errors.New("redispresence: Client and Node are required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "socket.io"
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.StreamMaxLen <= 0 {
		cfg.StreamMaxLen = DefaultStreamMaxLen
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{
		cfg: cfg, rdb: cfg.Client, p: cfg.Prefix + ":presence", log: cfg.Logger,
		stream: cfg.Prefix + ":events", ids: "{" + cfg.Prefix + ":events}:ids",
		seed: maphash.MakeSeed(), done: make(chan struct{}),
	}
	// A previous run of this node (same id) left its entries: they are lost sockets.
	if _, err := s.Sweep(ctx, cfg.Node); err != nil {
		return nil, err
	}
	if err := s.rdb.SAdd(ctx, s.nodesKey(), cfg.Node).Err(); err != nil {
		return nil, unavailable(err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.loop()
	return s, nil
}

// Stream is the name of the event stream.
func (s *Store) Stream() string { return s.stream }

func unavailable(err error) error { return fmt.Errorf("%w: %v", presence.ErrUnavailable, err) }

func tag(nsp, name string) string { return strconv.Itoa(len(nsp)) + ":" + nsp + name }

func untag(t string) (nsp, name string, ok bool) {
	n, rest, ok := strings.Cut(t, ":")
	l, err := strconv.Atoi(n)
	if !ok || err != nil || l < 0 || l > len(rest) {
		return "", "", false
	}
	return rest[:l], rest[l:], true
}

func (s *Store) roomKeys(nsp, room string) []string {
	b := s.p + ":{" + tag(nsp, room) + "}:"
	return []string{b + "sockets", b + "members", b + "info", b + "gens", b + "seq", b + "occ", b + "nodes", b + "outbox"}
}

func (s *Store) socketKeys(nsp, sid string) []string {
	b := s.p + ":socket:{" + tag(nsp, sid) + "}"
	return []string{b, b + ":outbox"}
}

func (s *Store) nodeRooms(node string) string   { return s.p + ":node:{" + node + "}:rooms" }
func (s *Store) nodeSockets(node string) string { return s.p + ":node:{" + node + "}:sockets" }
func (s *Store) nodesKey() string               { return s.p + ":nodes" }
func (s *Store) indexKey(nsp string) string     { return s.p + ":rooms:{" + nsp + "}" }

func (s *Store) lock(nsp, room string) *sync.Mutex {
	return &s.locks[maphash.String(s.seed, nsp+"\x00"+room)%uint64(len(s.locks))]
}

// entry is an outbox entry, as the scripts encode it.
type entry struct {
	T  string `json:"t"`
	U  string `json:"u"`
	S  string `json:"s"`
	G  string `json:"g"`
	M  int    `json:"m"`
	N  string `json:"n"`
	Ms int64  `json:"ms"`
	I  string `json:"i"`
	R  string `json:"r"`
}

// decodeEntry reads an outbox entry.
func decodeEntry(raw string) (entry, error) {
	var e entry
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return e, fmt.Errorf("redispresence: outbox entry %q: %w", raw, err)
	}
	if e.T == "" {
		return e, fmt.Errorf("redispresence: outbox entry %q has no type", raw)
	}
	return e, nil
}

func (e entry) event(nsp, room, sid string) presence.Event {
	ev := presence.Event{Type: e.T, Namespace: nsp, Room: room, Socket: sid, User: e.U, Node: e.N,
		Members: e.M, Time: e.Ms, Reason: e.R}
	if e.S != "" {
		ev.Socket = e.S
	}
	if e.I != "" {
		ev.Info = json.RawMessage(e.I)
	}
	switch e.T {
	case presence.EventConnect, presence.EventDisconnect:
		ev.ID = presence.EventID(e.T, nsp, "", ev.Socket, "")
	case presence.EventOccupied, presence.EventVacated:
		ev.ID = presence.EventID(e.T, nsp, room, "", e.G)
		ev.User, ev.Socket = "", ""
	default:
		ev.ID = presence.EventID(e.T, nsp, room, e.U, e.G)
	}
	return ev
}

// flush appends the outbox entries raw (of the room, or of the socket when
// room is "") to the stream, drops them from the outbox, updates the room
// index and tells the listener.
func (s *Store) flush(ctx context.Context, nsp, room, sid string, raw []string) ([]presence.Event, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	events := make([]presence.Event, 0, len(raw))
	args := []any{s.cfg.StreamMaxLen, s.cfg.DedupeWindow.Milliseconds()}
	gens := make([]string, len(raw))
	for i, r := range raw {
		e, err := decodeEntry(r)
		if err != nil {
			return nil, err
		}
		gens[i] = e.G
		ev := e.event(nsp, room, sid)
		js, _ := json.Marshal(ev)
		args = append(args, ev.ID, ev.Type, js)
		events = append(events, ev)
	}
	if err := appendScript.Run(ctx, s.rdb, []string{s.stream, s.ids}, args...).Err(); err != nil {
		return nil, unavailable(err)
	}
	var ackKeys []string
	if room != "" {
		ackKeys = s.roomKeys(nsp, room)
	} else {
		ackKeys = s.socketKeys(nsp, sid)
	}
	ack := make([]any, 0, len(raw)+1)
	ack = append(ack, "ack")
	for _, r := range raw {
		ack = append(ack, r)
	}
	script := roomScript
	if room == "" {
		script = socketScript
	}
	if err := script.Run(ctx, s.rdb, ackKeys, ack...).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	for i, ev := range events {
		if ev.Type == presence.EventOccupied || ev.Type == presence.EventVacated {
			occ := "0"
			if ev.Type == presence.EventOccupied {
				occ = "1"
			}
			if err := indexScript.Run(ctx, s.rdb, []string{s.indexKey(nsp)}, room, gens[i], occ).Err(); err != nil && !errors.Is(err, redis.Nil) {
				return nil, unavailable(err)
			}
		}
	}
	if s.cfg.Listener != nil {
		s.cfg.Listener(events)
	}
	return events, nil
}

// Connect implements presence.Store.
func (s *Store) Connect(ctx context.Context, so presence.Socket) ([]presence.Event, error) {
	if err := s.rdb.HSet(ctx, s.nodeSockets(s.cfg.Node), tag(so.Namespace, so.ID), so.User).Err(); err != nil {
		return nil, unavailable(err)
	}
	raw, err := socketScript.Run(ctx, s.rdb, s.socketKeys(so.Namespace, so.ID), "connect", s.cfg.Node, so.User).StringSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	return s.flush(ctx, so.Namespace, "", so.ID, raw)
}

// Disconnect implements presence.Store.
func (s *Store) Disconnect(ctx context.Context, so presence.Socket, reason string) ([]presence.Event, error) {
	return s.disconnect(ctx, so.Namespace, so.ID, s.cfg.Node, reason, false)
}

func (s *Store) disconnect(ctx context.Context, nsp, sid, node, reason string, sweep bool) ([]presence.Event, error) {
	args := []any{"disconnect", node, reason}
	if sweep {
		args = append(args, "sweep")
	}
	raw, err := socketScript.Run(ctx, s.rdb, s.socketKeys(nsp, sid), args...).StringSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	events, err := s.flush(ctx, nsp, "", sid, raw)
	if err != nil {
		return nil, err
	}
	if err := s.rdb.HDel(ctx, s.nodeSockets(node), tag(nsp, sid)).Err(); err != nil {
		return events, unavailable(err)
	}
	return events, nil
}

// roomResult splits a room script's answer: this node's sockets left in
// the room, and the outbox entries.
func roomResult(v any, err error) (int64, []string, error) {
	if err != nil {
		return 0, nil, unavailable(err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return 0, nil, fmt.Errorf("redispresence: unexpected script answer %v", v)
	}
	n, _ := arr[0].(int64)
	raw := make([]string, 0, len(arr)-1)
	for _, x := range arr[1:] {
		if str, ok := x.(string); ok {
			raw = append(raw, str)
		}
	}
	return n, raw, nil
}

// Join implements presence.Store.
func (s *Store) Join(ctx context.Context, so presence.Socket, room string) ([]presence.Event, error) {
	mu := s.lock(so.Namespace, room)
	mu.Lock()
	// The node's rooms set is written first, so that it always holds every
	// room where the node may have an entry (the sweep walks it).
	if err := s.rdb.SAdd(ctx, s.nodeRooms(s.cfg.Node), tag(so.Namespace, room)).Err(); err != nil {
		mu.Unlock()
		return nil, unavailable(err)
	}
	_, raw, err := roomResult(roomScript.Run(ctx, s.rdb, s.roomKeys(so.Namespace, room),
		"join", so.ID, s.cfg.Node, so.User, string(so.Info)).Result())
	mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.flush(ctx, so.Namespace, room, "", raw)
}

// Leave implements presence.Store.
func (s *Store) Leave(ctx context.Context, so presence.Socket, room string) ([]presence.Event, error) {
	mu := s.lock(so.Namespace, room)
	mu.Lock()
	left, raw, err := roomResult(roomScript.Run(ctx, s.rdb, s.roomKeys(so.Namespace, room),
		"leave", so.ID, s.cfg.Node).Result())
	if err == nil && left == 0 {
		// No socket of this node is in the room any more; a join of this
		// node waits for the stripe, so it re-adds the room after this.
		err = s.rdb.SRem(ctx, s.nodeRooms(s.cfg.Node), tag(so.Namespace, room)).Err()
		if err != nil {
			err = unavailable(err)
		}
	}
	mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.flush(ctx, so.Namespace, room, "", raw)
}

// Members implements presence.Store. Pages of a room come from HSCAN: a
// user who is a member for the whole walk is returned once, users are
// sorted within a page only, and a page may hold somewhat more or fewer
// than limit.
func (s *Store) Members(ctx context.Context, nsp, room, cursor string, limit int) (presence.Page, error) {
	k := s.roomKeys(nsp, room)
	pipe := s.rdb.Pipeline()
	users := pipe.HLen(ctx, k[1])
	socks := pipe.HLen(ctx, k[0])
	var scan *redis.ScanCmd
	if limit > 0 {
		c, _ := strconv.ParseUint(cursor, 10, 64)
		scan = pipe.HScan(ctx, k[1], c, "", int64(limit))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return presence.Page{}, unavailable(err)
	}
	p := presence.Page{Users: int(users.Val()), Sockets: int(socks.Val()), Members: []presence.Member{}}
	if scan == nil {
		return p, nil
	}
	kv, next := scan.Val()
	if next != 0 {
		p.Next = strconv.FormatUint(next, 10)
	}
	if len(kv) == 0 {
		return p, nil
	}
	names := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		n, _ := strconv.Atoi(kv[i+1])
		if n <= 0 {
			continue
		}
		names = append(names, kv[i])
		p.Members = append(p.Members, presence.Member{User: kv[i], Sockets: n})
	}
	if len(names) > 0 {
		infos, err := s.rdb.HMGet(ctx, k[2], names...).Result()
		if err != nil {
			return presence.Page{}, unavailable(err)
		}
		for i, v := range infos {
			if str, ok := v.(string); ok && str != "" {
				p.Members[i].Info = json.RawMessage(str)
			}
		}
	}
	slices.SortFunc(p.Members, func(a, b presence.Member) int { return strings.Compare(a.User, b.User) })
	return p, nil
}

// Rooms implements presence.Store: the namespace's index, then the counts
// of every room in one pipeline.
func (s *Store) Rooms(ctx context.Context, nsp string) ([]presence.RoomCount, error) {
	names, err := s.rdb.ZRangeByScore(ctx, s.indexKey(nsp), &redis.ZRangeBy{Min: "(0", Max: "+inf"}).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]presence.RoomCount, 0, len(names))
	if len(names) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([][2]*redis.IntCmd, len(names))
	for i, n := range names {
		k := s.roomKeys(nsp, n)
		cmds[i] = [2]*redis.IntCmd{pipe.HLen(ctx, k[1]), pipe.HLen(ctx, k[0])}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable(err)
	}
	for i, n := range names {
		if u := int(cmds[i][0].Val()); u > 0 {
			out = append(out, presence.RoomCount{Name: n, Users: u, Sockets: int(cmds[i][1].Val())})
		}
	}
	slices.SortFunc(out, func(a, b presence.RoomCount) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Throttle implements presence.Store with SET NX PX on the room's tick key.
func (s *Store) Throttle(ctx context.Context, nsp, room string, interval time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.p+":{"+tag(nsp, room)+"}:tick", s.cfg.Node, interval).Result()
	if err != nil {
		return false, unavailable(err)
	}
	return ok, nil
}

// Close stops the sweep loop. The node's entries stay: a node that stops
// is swept when its lease expires, as one that crashed.
func (s *Store) Close() error {
	s.cancel()
	<-s.done
	return nil
}
