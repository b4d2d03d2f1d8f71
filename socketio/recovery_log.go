package socketio

// This file is the broadcast log's part in connection state recovery
// (Recovery.Log): every non-volatile broadcast is appended once to its
// namespace's log before it is delivered; each node delivers the logged
// broadcasts to its local sockets by tailing the log (one tail per
// namespace per node), so every socket sees them in log order and its
// offset's log position is a point before which it missed nothing; a
// recovering socket is sent the broadcasts of its rooms after that point.
//
// Offsets: "<user stream ID>~<log position>" with a log, the user stream
// ID alone without one (and from clients connected before the log was
// turned on: their log position is unknown). Both parts only grow along
// the deliveries to one socket, so offsets compare part by part (user
// first): a client de-duplicates by keeping the greatest.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/parser"
)

// offsetSep separates the log position from the user stream ID in an
// offset. Neither part can hold it.
const offsetSep = '~'

// errLogPosition is a recovery whose log position is unknown (an offset
// of the old form and no log position saved with the session).
var errLogPosition = errors.New("socketio: offset has no broadcast log position")

// ParseOffset splits an offset as clients hold it into the user stream ID
// and the broadcast log position ("" when the offset has none: the form
// from before the broadcast log). The user part is not checked here (the
// Store checks it); a log part that is not a position is an error.
func ParseOffset(offset string) (user, log string, err error) {
	i := strings.IndexByte(offset, offsetSep)
	if i < 0 {
		return offset, "", nil
	}
	user, log = offset[:i], offset[i+1:]
	if _, err := broadcastlog.ParsePosition(log); err != nil {
		return "", "", err
	}
	if strings.IndexByte(user, offsetSep) >= 0 {
		return "", "", fmt.Errorf("%w: %q", broadcastlog.ErrInvalidPosition, offset)
	}
	return user, log, nil
}

// FormatOffset is the reverse of ParseOffset.
func FormatOffset(user, log string) string {
	if log == "" {
		return user
	}
	return user + string(offsetSep) + log
}

// logTail delivers one namespace's logged broadcasts to this node's
// sockets, in log order.
type logTail struct {
	nsp    *Namespace
	cancel func()

	mu  sync.Mutex
	pos broadcastlog.Position // newest entry handed to the sockets
}

// position is the newest entry the tail delivered: a socket attached from
// now on is sent every later entry of its rooms live.
func (t *logTail) position() broadcastlog.Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pos
}

// entryMessage is the message of a logged broadcast.
func entryMessage(nsp string, e *broadcastlog.Entry) *adapter.Message {
	typ := parser.Event
	if len(e.Attachments) > 0 {
		typ = parser.BinaryEvent
	}
	m := &adapter.Message{
		Packet: parser.Packet{Type: typ, Namespace: nsp, ID: parser.NoID, Data: e.Data, Attachments: e.Attachments},
		Log:    e.ID,
		LogEnd: append([]byte(e.ID), '"', ']'),
	}
	if p, err := broadcastlog.ParsePosition(e.ID); err == nil {
		m.LogPosition = p
		m.Published = time.UnixMilli(int64(p.Ms)) // appended then
	}
	return m
}

// logPosition is m's position in the log: parsed once by entryMessage,
// else from m.Log.
func logPosition(m *adapter.Message) (broadcastlog.Position, error) {
	if m.LogPosition != (broadcastlog.Position{}) {
		return m.LogPosition, nil
	}
	return broadcastlog.ParsePosition(m.Log)
}

func (t *logTail) deliver(entries []broadcastlog.Entry, err error) {
	if err != nil {
		// Entries were trimmed before this node could deliver them: its
		// sockets may have missed some. They are sent to recovery, which
		// will say whether it can fill what they missed.
		t.nsp.srv.log.Warn("socketio: broadcast log gap; closing the namespace's connections so that they recover", "nsp", t.nsp.name, "err", err)
		for _, s := range t.nsp.LocalSockets() {
			s.client.closeWith(engineio.ReasonTransportError)
		}
		return
	}
	// Consecutive entries to the same rooms are delivered socket by
	// socket (adapter.Memory.DeliverLocalRun), whatever their exceptions
	// (a room's publishers each except their own socket): a socket's
	// writer gets a read's entries together, in one hand-off and one
	// write, instead of a wake-up per entry.
	runner, _ := t.nsp.adapter.(adapter.LocalRunner)
	for i := 0; i < len(entries); {
		j := i + 1
		if runner == nil {
			opts := adapter.Options{Rooms: entries[i].Rooms, Except: entries[i].Except, Local: true}
			_ = t.nsp.adapter.Broadcast(context.Background(), entryMessage(t.nsp.name, &entries[i]), opts)
		} else {
			for j < len(entries) && slices.Equal(entries[i].Rooms, entries[j].Rooms) {
				j++
			}
			msgs := make([]*adapter.Message, j-i)
			var except [][]string
			for k := i; k < j; k++ {
				msgs[k-i] = entryMessage(t.nsp.name, &entries[k])
				if len(entries[k].Except) > 0 {
					if except == nil {
						except = make([][]string, j-i)
					}
					except[k-i] = entries[k].Except
				}
			}
			runner.DeliverLocalRun(msgs, entries[i].Rooms, except)
		}
		if p, err := broadcastlog.ParsePosition(entries[j-1].ID); err == nil {
			t.mu.Lock()
			t.pos = p
			t.mu.Unlock()
		}
		i = j
	}
}

// tailOf returns the namespace's tail, starting it at the log's end on
// first use.
func (r *recovery) tailOf(n *Namespace) (*logTail, error) {
	r.tailsMu.Lock()
	defer r.tailsMu.Unlock()
	if t := r.tails[n.name]; t != nil {
		return t, nil
	}
	if r.tailsClosed {
		return nil, errServerClosed
	}
	ctx, cancel := r.bound(context.Background())
	defer cancel()
	last, err := r.Log.Last(ctx, n.name)
	if err != nil {
		return nil, logError(err)
	}
	pos, err := broadcastlog.ParsePosition(last)
	if err != nil {
		return nil, err
	}
	t := &logTail{nsp: n, pos: pos}
	if t.cancel, err = r.Log.Tail(context.Background(), n.name, last, t.deliver); err != nil {
		return nil, logError(err)
	}
	if r.tails == nil {
		r.tails = map[string]*logTail{}
	}
	r.tails[n.name] = t
	return t, nil
}

// close implements extension: the tails stop.
func (r *recovery) close() {
	r.tailsMu.Lock()
	r.tailsClosed = true
	tails := r.tails
	r.tails = nil
	r.tailsMu.Unlock()
	for _, t := range tails {
		t.cancel()
	}
}

// logError makes a log that cannot be reached an adapter.ErrUnavailable,
// what callers of Emit already test for.
func logError(err error) error {
	if errors.Is(err, broadcastlog.ErrUnavailable) {
		return fmt.Errorf("%w: %w", adapter.ErrUnavailable, err)
	}
	return err
}

// logged reports whether a broadcast goes through the log.
func (r *recovery) logged(b BroadcastOperator) bool {
	return r.Log != nil && !b.opts.Volatile && !b.opts.Local
}

// logBroadcast appends a broadcast to the log, once, and relays it marked
// with its position for the nodes that do not read the log (a mixed
// fleet); this node's and the other Roomcast nodes' tails deliver it.
func (r *recovery) logBroadcast(ctx context.Context, b BroadcastOperator, event string, args []any) error {
	lb, err := r.prepareLog(b, event, args)
	if err != nil {
		return err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	id, err := r.Log.Append(ctx, b.nsp.name, lb.entry)
	return lb.appended(id, err, func(m *adapter.Message, opts adapter.Options) error {
		return b.adapter().Broadcast(ctx, m, opts)
	})
}

// logBroadcastAsync is logBroadcast through the log's asynchronous append
// (queued appends share a round trip): done is called from the log's
// goroutine once the broadcast is logged (the relay for socket.io servers
// of a mixed fleet goes through the adapter's ordered publish pipeline
// without being waited for), or with the error.
func (r *recovery) logBroadcastAsync(aa broadcastlog.AsyncAppender, b BroadcastOperator, event string, args []any, done func(error)) {
	lb, err := r.prepareLog(b, event, args)
	if err != nil {
		done(err)
		return
	}
	aa.AppendAsync(b.nsp.name, lb.entry, func(id string, err error) {
		done(lb.appended(id, err, func(m *adapter.Message, opts adapter.Options) error {
			if ab, ok := b.adapter().(adapter.AsyncBroadcaster); ok {
				ab.BroadcastAsync(m, opts, lb.relayed)
				return nil
			}
			return b.adapter().Broadcast(context.Background(), m, opts)
		}))
	})
}

// pendingLog is a broadcast on its way into the log.
type pendingLog struct {
	r     *recovery
	b     BroadcastOperator
	typ   parser.Type
	entry broadcastlog.Entry
}

// prepareLog starts the namespace's tail (so that this node delivers the
// entry) and encodes the broadcast as a log entry.
func (r *recovery) prepareLog(b BroadcastOperator, event string, args []any) (*pendingLog, error) {
	if _, err := r.tailOf(b.nsp); err != nil {
		return nil, err
	}
	data, atts, typ, err := parser.MarshalArgs(event, args, false)
	if err != nil {
		return nil, err
	}
	e := broadcastlog.Entry{Rooms: b.opts.Rooms, Except: b.opts.Except, Data: data, Attachments: atts}
	return &pendingLog{r: r, b: b, typ: typ, entry: e}, nil
}

// appended finishes a broadcast once its append returned. Logged: it is
// relayed with its position (Options.Log) through relay, for socket.io
// servers of a mixed fleet (Roomcast nodes take it from the log; a relay
// error only means those servers miss it). Not logged: the caller is told,
// and this node's sockets get it live only (as without a log); no relay
// waits on a Redis that the log could not reach.
func (p *pendingLog) appended(id string, err error, relay func(*adapter.Message, adapter.Options) error) error {
	m := &adapter.Message{
		Packet: parser.Packet{Type: p.typ, Namespace: p.b.nsp.name, ID: parser.NoID,
			Data: p.entry.Data, Attachments: p.entry.Attachments},
		Published: time.Now(),
	}
	opts := p.b.Options()
	if err != nil {
		opts.Local = true
		_ = p.b.adapter().Broadcast(context.Background(), m, opts)
		return logError(err)
	}
	opts.Log = id
	p.relayed(relay(m, opts))
	return nil
}

func (p *pendingLog) relayed(err error) {
	if err != nil {
		p.r.srv.log.Debug("socketio: relaying a logged broadcast failed", "nsp", p.b.nsp.name, "err", err)
	}
}

// History returns up to limit (100 when <= 0) broadcasts to room (not
// those to the whole namespace) logged after the offset since (an offset
// as clients hold it, or a bare log position), oldest first. With since ""
// it returns the last limit broadcasts the log holds. It returns
// ErrHistoryExpired when the log no longer holds everything after since,
// and ErrNoRecovery without Recovery.Log. It reads the namespace's log
// from since (or from its oldest entry): its cost grows with the
// namespace's traffic over the retention, not with the room's.
func (n *Namespace) History(ctx context.Context, room, since string, limit int) ([]HistoryEntry, error) {
	r := recoveryOf(n.srv)
	if r == nil || r.Log == nil {
		return nil, ErrNoRecovery
	}
	if limit <= 0 {
		limit = 100
	}
	after := ""
	if since != "" {
		_, log, err := ParseOffset(since)
		switch {
		case err != nil:
			return nil, ErrHistoryExpired
		case log == "":
			log = since // a bare position
		}
		after = log
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	var out []HistoryEntry
	for {
		page, err := r.Log.Read(ctx, n.name, after, broadcastlog.DefaultPageSize)
		if err != nil {
			if errors.Is(err, broadcastlog.ErrExpired) || errors.Is(err, broadcastlog.ErrInvalidPosition) {
				return nil, ErrHistoryExpired
			}
			return nil, logError(err)
		}
		for i := range page {
			if e := &page[i]; slices.Contains(e.Rooms, room) {
				out = append(out, HistoryEntry{Offset: e.ID, Data: e.Data, Attachments: e.Attachments})
			}
		}
		if len(page) < broadcastlog.DefaultPageSize || (since != "" && len(out) >= limit) {
			break
		}
		after = page[len(page)-1].ID
	}
	if since == "" && len(out) > limit {
		out = out[len(out)-limit:]
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// EmitHistory sends entries that History returned to the socket, as the
// events they were, in order. They carry the socket's offset, not their
// own position (they precede what the socket was sent): a recovery is not
// affected by them.
func (s *Socket) EmitHistory(entries []HistoryEntry) error {
	for i := range entries {
		e := &entries[i]
		typ := parser.Event
		if len(e.Attachments) > 0 {
			typ = parser.BinaryEvent
		}
		m := &adapter.Message{Packet: parser.Packet{Type: typ, Namespace: s.nsp.name, ID: parser.NoID, Data: e.Data, Attachments: e.Attachments}}
		if !s.Deliver(m, false) {
			return ErrDisconnected
		}
	}
	return nil
}

// HistoryEntry is one logged broadcast as History returns it.
type HistoryEntry struct {
	// Offset is the broadcast's log position: pass it as since to read on.
	Offset string
	// Data is the packet's data, [event, ...args] as JSON; binary
	// arguments are placeholders for Attachments.
	Data        []byte
	Attachments [][]byte
}

// errServerClosed is a log tail asked for after Shutdown.
var errServerClosed = errors.New("socketio: server shut down")

// ErrHistoryExpired is returned by History when what follows since is no
// longer in the log.
var ErrHistoryExpired = errors.New("socketio: history expired")

// socketLog is a socket's part in the broadcast log, under
// recoverySocket.tailMu except where said.
type socketLog struct {
	t        *logTail
	pos      broadcastlog.Position // newest logged broadcast sent (or the floor)
	start    broadcastlog.Position // where this connection started reading the log
	catching bool                  // a recovery is reading the log: live entries wait in held
	held     []*adapter.Message
	slab     []byte // frame tails are carved from it (formatTail)
	// head is `,"<user stream ID>~`, the socket's own part of a logged
	// broadcast's offset (the message's LogEnd follows it); rebuilt, never
	// changed in place, when the user part changes (headFor).
	head     []byte
	headUser string

	// Set while connecting, read-only after.
	rooms   []string              // the recovered session's rooms and sid
	readPos broadcastlog.Position // newest entry read by the recovery

	backlogMu sync.Mutex
	backlog   []broadcastlog.Entry // missed broadcasts not sent yet
}

// formatTail carves the frame tail of the offset (log position pos, user
// stream ID user) from the socket's slab, so that a delivery allocates
// nothing: a tail stays referenced by the frames queued with it, and a
// new slab is taken when the current one is full.
func (rs *recoverySocket) formatTail(pos broadcastlog.Position, user string) []byte {
	need := len(user) + 4 + 2*20 + 2
	if cap(rs.log.slab)-len(rs.log.slab) < need {
		// The first slab fits a few tails (an idle socket keeps one);
		// a busy socket's grow to 4 KiB.
		size := min(max(2*cap(rs.log.slab), 128), 4096)
		rs.log.slab = make([]byte, 0, max(size, need))
	}
	start := len(rs.log.slab)
	b := append(rs.log.slab, ',', '"')
	b = append(b, user...)
	if rs.r.Log != nil {
		b = append(b, offsetSep)
		b = pos.Append(b)
	}
	b = append(b, '"', ']')
	rs.log.slab = b
	return b[start:len(b):len(b)]
}

// setTail rebuilds the tail after the offset changed.
func (rs *recoverySocket) setTail() { rs.tail = rs.formatTail(rs.log.pos, rs.offset) }

// offsetString is the offset the client holds; tailMu is held.
func (rs *recoverySocket) offsetString() string {
	if rs.r.Log == nil {
		return rs.offset
	}
	return FormatOffset(rs.offset, rs.log.pos.String())
}

// startLog runs first in connecting: the namespace's tail runs, and a
// socket that is not recovered starts at its position (it is sent every
// later entry of its rooms live once attached).
func (rs *recoverySocket) startLog() error {
	if rs.r.Log == nil {
		return nil
	}
	t, err := rs.r.tailOf(rs.s.nsp)
	if err != nil {
		return err
	}
	rs.log.t = t
	rs.tailMu.Lock()
	rs.log.pos = t.position()
	rs.log.start = rs.log.pos
	rs.tailMu.Unlock()
	return nil
}

// sessionOffset is the offset stored with the session; tailMu is held.
// Its log part is where this connection started reading the log, not the
// last broadcast queued to it: a client that comes back without an offset
// (or with one from before the log) received none of this connection's
// events, queued is not received, so recovery must start there.
func (rs *recoverySocket) sessionOffset() string {
	if rs.r.Log == nil {
		return rs.offset
	}
	return FormatOffset(rs.offset, rs.log.start.String())
}

// recoverLog runs in connecting with the offset to recover from: it reads
// the broadcasts of the restored session's rooms after the offset's log
// position (or the position saved with the session when the offset has
// none) and returns the user part of the offset. When the log cannot give
// all of them the session is dropped (not recovered: "expired"). An error
// is the log's (the socket cannot connect).
func (rs *recoverySocket) recoverLog(after string) (string, error) {
	user, logAfter, err := ParseOffset(after)
	if err != nil {
		return after, nil // the Store calls it invalid: expired
	}
	if rs.r.Log == nil || rs.restored == nil {
		return user, nil
	}
	if logAfter == "" {
		_, logAfter, _ = ParseOffset(rs.restored.Offset)
	}
	err = rs.readBacklog(logAfter)
	switch {
	case err == nil:
		return user, nil
	case errors.Is(err, errLogPosition), errors.Is(err, broadcastlog.ErrExpired), errors.Is(err, broadcastlog.ErrInvalidPosition):
		rs.why = resultExpired
		rs.demote()
		if rs.anonymous {
			rs.user = anonUser(rs.pid)
			return "", nil // a new anonymous user: nothing to replay
		}
		return user, nil
	}
	rs.count(resultError)
	return "", logError(err)
}

// readBacklog reads what the restored session missed in its rooms.
func (rs *recoverySocket) readBacklog(logAfter string) error {
	if logAfter == "" {
		return errLogPosition
	}
	p, err := broadcastlog.ParsePosition(logAfter)
	if err != nil {
		return err
	}
	rooms := append(slices.Clone(rs.restored.Rooms), rs.restored.SID)
	var backlog []broadcastlog.Entry
	end, err := rs.readLog(p, func(e *broadcastlog.Entry) error {
		if e.Selects(rooms) {
			backlog = append(backlog, *e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rs.log.rooms, rs.log.readPos, rs.log.backlog = rooms, end, backlog
	rs.tailMu.Lock()
	rs.log.pos, rs.log.start, rs.log.catching = p, p, true
	rs.tailMu.Unlock()
	return nil
}

// readLog calls fn with every entry after after, to the log's end, and
// returns the newest position read.
func (rs *recoverySocket) readLog(after broadcastlog.Position, fn func(*broadcastlog.Entry) error) (broadcastlog.Position, error) {
	r := rs.r
	for {
		ctx, cancel := r.bound(context.Background())
		page, err := r.Log.Read(ctx, rs.s.nsp.name, after.String(), broadcastlog.DefaultPageSize)
		cancel()
		if err != nil {
			return after, err
		}
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return after, err
			}
			if p, err := broadcastlog.ParsePosition(page[i].ID); err == nil {
				after = p
			}
		}
		if len(page) < broadcastlog.DefaultPageSize {
			return after, nil
		}
	}
}

// sendBacklogBefore sends the missed broadcasts that precede the user
// queue's message id (all of them with id ""), so that the two backlogs
// reach the client merged in order.
func (rs *recoverySocket) sendBacklogBefore(id string) error {
	if rs.r.Log == nil || rs.restored == nil {
		return nil // no session (or it was dropped): nothing missed to send
	}
	var until broadcastlog.Position
	all := id == ""
	if !all {
		var err error
		if until, err = broadcastlog.ParsePosition(id); err != nil {
			return nil
		}
	}
	rs.log.backlogMu.Lock()
	defer rs.log.backlogMu.Unlock()
	n := 0
	for ; n < len(rs.log.backlog); n++ {
		e := &rs.log.backlog[n]
		if p, err := broadcastlog.ParsePosition(e.ID); err == nil && !all && !p.Less(until) {
			break
		}
		if err := rs.sendEntry(e); err != nil {
			return err
		}
	}
	rs.log.backlog = rs.log.backlog[n:]
	return nil
}

// sendEntry sends a logged broadcast read from the log, waiting for the
// client while its send queue is over replayHighWater.
func (rs *recoverySocket) sendEntry(e *broadcastlog.Entry) error {
	ctx, cancel := context.WithTimeout(context.Background(), rs.r.Timeout)
	err := rs.s.client.conn.WaitBelow(ctx, replayHighWater)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("socketio: client took no backlog for %v", rs.r.Timeout)
	}
	if !rs.sendLog(entryMessage(rs.s.nsp.name, e), true) {
		return ErrDisconnected
	}
	return nil
}

// sendLogged is sendEvent for a broadcast delivered by the log's tail.
func (rs *recoverySocket) sendLogged(m *adapter.Message) bool { return rs.sendLog(m, false) }

// sendLog sends a logged broadcast unless the socket was sent it (or a
// later one) already; live ones wait while a recovery reads the log.
func (rs *recoverySocket) sendLog(m *adapter.Message, replay bool) bool {
	pos, err := logPosition(m)
	if err != nil {
		return false
	}
	rs.tailMu.Lock()
	defer rs.tailMu.Unlock()
	if rs.log.catching && !replay {
		rs.log.held = append(rs.log.held, m)
		return true
	}
	return rs.sendLogLocked(m, pos)
}

// sendLogLocked sends the logged broadcast m at position pos unless the
// socket is past it; tailMu is held. The offset it carries is the
// socket's cached head and the message's shared LogEnd: nothing is
// formatted or allocated per delivery.
func (rs *recoverySocket) sendLogLocked(m *adapter.Message, pos broadcastlog.Position) bool {
	if !rs.log.pos.Less(pos) {
		return true // sent already
	}
	var one [1]engineio.Frame
	out, ok := rs.appendLogFrames(one[:0], m, pos)
	if !ok || !rs.s.client.send(out) {
		return false
	}
	// The offset moved: the tail of other events is rebuilt when one
	// needs it (sendEvent).
	rs.log.pos, rs.tail = pos, nil
	return true
}

// appendLogFrames appends the frames of the logged broadcast m at
// position pos, carrying the socket's offset, to out; false when m is not
// an event an offset can be added to. tailMu is held.
func (rs *recoverySocket) appendLogFrames(out []engineio.Frame, m *adapter.Message, pos broadcastlog.Position) ([]engineio.Frame, bool) {
	frames := m.Frames()
	first := frames[0]
	if n := len(first.Data); n == 0 || first.Data[n-1] != ']' {
		return out, false
	}
	first.Data = first.Data[:len(first.Data)-1]
	if m.LogEnd != nil {
		first.Tail, first.End = rs.headFor(), m.LogEnd
	} else {
		first.Tail = rs.formatTail(pos, rs.offset) // a message not made by entryMessage
	}
	out = append(out, first)
	return append(out, frames[1:]...), true
}

// runFrames bounds the frames a run of logged broadcasts hands to the
// connection at once (they are gathered on the stack).
const runFrames = 32

// sendLoggedRun is sendLogged for a run of one tail read's broadcasts:
// their frames go to the connection in one hand-off (one wake-up of its
// writer, one write), up to runFrames at a time. Live ones wait while a
// recovery reads the log.
func (rs *recoverySocket) sendLoggedRun(ms []*adapter.Message) bool {
	rs.tailMu.Lock()
	defer rs.tailMu.Unlock()
	if rs.log.catching {
		rs.log.held = append(rs.log.held, ms...)
		return true
	}
	var buf [runFrames]engineio.Frame
	out, pos := buf[:0], rs.log.pos
	flush := func() bool {
		if len(out) == 0 {
			return true
		}
		if !rs.s.client.send(out) {
			return false
		}
		rs.log.pos, rs.tail = pos, nil
		out = out[:0]
		return true
	}
	for _, m := range ms {
		p, err := logPosition(m)
		if err != nil || !pos.Less(p) {
			continue // sent already
		}
		if len(out)+len(m.Frames()) > cap(out) {
			if !flush() {
				return false
			}
			if len(m.Frames()) > cap(out) { // many attachments: on its own
				if !rs.sendLogLocked(m, p) {
					return false
				}
				pos = p
				continue
			}
		}
		var ok bool
		if out, ok = rs.appendLogFrames(out, m, p); ok {
			pos = p
		}
	}
	return flush()
}

// headFor returns the socket's part of a logged broadcast's offset,
// `,"<user stream ID>~`, rebuilding it when the user part changed.
func (rs *recoverySocket) headFor() []byte {
	if rs.log.head == nil || rs.log.headUser != rs.offset {
		rs.log.head = append(append(append(make([]byte, 0, len(rs.offset)+3), ',', '"'), rs.offset...), offsetSep)
		rs.log.headUser = rs.offset
	}
	return rs.log.head
}

// catchUp runs in connected, once a recovered socket is back in its rooms
// and before its CONNECT reply: it sends what was appended to the log
// since the recovery read it (the tail delivers what follows), then the
// live entries held meanwhile that it has not sent, and goes live. A log
// that no longer holds it all is an error: the connection closes before
// the reply, and the next attempt is not recovered.
func (rs *recoverySocket) catchUp() error {
	if rs.r.Log == nil {
		return nil
	}
	rs.tailMu.Lock()
	catching := rs.log.catching
	rs.tailMu.Unlock()
	if !catching {
		return nil
	}
	if rs.recovered {
		if err := rs.sendBacklogBefore(""); err != nil {
			return err
		}
		_, err := rs.readLog(rs.log.readPos, func(e *broadcastlog.Entry) error {
			if !e.Selects(rs.log.rooms) {
				return nil
			}
			return rs.sendEntry(e)
		})
		if err != nil {
			return logError(err)
		}
	} else if t := rs.log.t; t != nil {
		// Dropped after the log was read: a new socket from the tail's
		// position.
		rs.tailMu.Lock()
		if p := t.position(); rs.log.pos.Less(p) {
			rs.log.pos = p
		}
		rs.log.start = rs.log.pos
		rs.tailMu.Unlock()
	}
	rs.tailMu.Lock()
	defer rs.tailMu.Unlock()
	for _, m := range rs.log.held {
		if pos, err := broadcastlog.ParsePosition(m.Log); err == nil {
			rs.sendLogLocked(m, pos)
		}
	}
	rs.log.held, rs.log.catching = nil, false
	return nil
}
