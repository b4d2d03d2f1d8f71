package gateway

// A token's life on a connected socket and the rights that follow it
// (docs/SECURITY.md, "Token lifetime" and "Rights are checked wherever they
// are used again"):
//
//   - a socket whose token has "exp" is sent eventTokenExpiring
//     TokenExpiryWarning before it, and its connection is closed at exp
//     (engineio.ReasonTokenExpired), so that the official client reconnects
//     through its auth callback with a fresh token;
//   - the reserved client event "auth" {token} replaces the socket's token
//     by a fresh one of the same user: the rights, the expiry and the rooms
//     follow the new token;
//   - a recovered socket rejoins only the rooms its current token allows
//     (socketio.Recovery.MayRejoin) and is told the others
//     (eventRoomsDropped);
//   - a user's durable-room memberships are checked against the token at
//     every connect (and every "auth"): those it no longer allows end.

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/engineio"
	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/clock"
	"github.com/roomcast/roomcast/socketio"
)

const (
	// authEvent is the reserved client event that replaces a socket's token.
	authEvent = "auth"
	// eventTokenExpiring {exp} warns a socket that its token expires at exp
	// (unix seconds).
	eventTokenExpiring = "roomcast:token-expiring"
	// eventRoomsDropped {rooms} tells a recovered socket which rooms of its
	// session its current token no longer allows.
	eventRoomsDropped = "roomcast:rooms-dropped"

	codeUnauthorized = "unauthorized"
)

// keepClaims keeps of a verified token what a connection's life needs: the
// user, the patterns and the expiry, not every raw claim (a connection may
// live for days).
func keepClaims(c *auth.Claims) *auth.Claims {
	return &auth.Claims{Subject: c.Subject, Join: c.Join, Publish: c.Publish, DM: c.DM, Expiry: c.Expiry}
}

// tokenLife is the expiry deadline of one socket's token, on the gateway's
// token clock (one timer for every socket): first for the warning, then
// for the close; off the clock when the socket disconnects, filed again
// when the token is replaced.
type tokenLife struct {
	g *Gateway
	s *socketio.Socket

	entry clock.Entry // on g.tokens

	mu     sync.Mutex
	exp    time.Time
	warned bool
	done   bool // the socket is gone or its connection closed
}

// tokenClockGranularity is how late after a token's warning time or
// expiry the gateway may act on it.
const tokenClockGranularity = 100 * time.Millisecond

func newTokenClock() *clock.Clock[tokenLife] {
	return clock.New(tokenClockGranularity, func(l *tokenLife) *clock.Entry { return &l.entry }, (*tokenLife).tick)
}

// onConnected runs first in the namespace's OnConnection, right after the
// CONNECT reply: a recovered socket is told the rooms it was not put back
// into, and the token's expiry is armed.
func (g *Gateway) onConnected(s *socketio.Socket) {
	if dropped := s.DroppedRooms(); len(dropped) > 0 {
		_ = s.Emit(eventRoomsDropped, map[string]any{"rooms": dropped})
	}
	sess := sessionOf(s)
	if sess.life == nil {
		return // anonymous: no token
	}
	s.OnDisconnect(func(string) { sess.life.stop() })
	sess.life.arm(sess.claims.Expiry)
	if !s.Connected() {
		sess.life.stop() // gone before OnDisconnect was registered
	}
}

// arm (re)files the socket for a token expiring at exp; a zero exp never
// expires.
func (l *tokenLife) arm(exp time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exp, l.warned = exp, false
	if l.done || exp.IsZero() {
		l.g.tokens.Stop(l)
		return
	}
	l.g.tokens.Schedule(l, exp.Add(-l.g.cfg.TokenExpiryWarning))
}

func (l *tokenLife) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	l.g.tokens.Stop(l)
}

// tick runs on the token clock: the warning first, the close at exp.
func (l *tokenLife) tick() {
	l.mu.Lock()
	if l.done || l.exp.IsZero() {
		l.mu.Unlock()
		return
	}
	exp, now := l.exp, time.Now()
	if warnAt := exp.Add(-l.g.cfg.TokenExpiryWarning); now.Before(warnAt) {
		// A fresh token came while this run was on its way.
		l.g.tokens.Schedule(l, warnAt)
		l.mu.Unlock()
		return
	}
	if now.Before(exp) {
		warn := !l.warned
		l.warned = true
		l.g.tokens.Schedule(l, exp)
		l.mu.Unlock()
		if warn {
			_ = l.s.Emit(eventTokenExpiring, map[string]any{"exp": exp.Unix()})
		}
		return
	}
	l.done = true
	l.mu.Unlock()
	l.g.metrics.LimitRefused("token_expired")
	l.s.CloseConn(engineio.ReasonTokenExpired)
}

// onAuth is the reserved "auth" {token} event: the socket's token is
// replaced by a fresh one for the same user. Ack {ok, exp, left}: exp is the
// new token's (unix seconds, null when it has none), left the rooms it no
// longer allows, which the socket left.
func (g *Gateway) onAuth(e *socketio.Event) {
	s := e.Socket()
	sess := sessionOf(s)
	if sess.Anonymous || sess.life == nil || g.verifier == nil {
		reply(e, errorAck(codeBadRequest, "auth: this socket did not connect with a token"))
		return
	}
	var token string
	if len(e.Args) > 0 {
		if obj, ok := e.Args[0].(map[string]any); ok {
			token, _ = obj["token"].(string)
		}
	}
	if token == "" {
		reply(e, errorAck(codeBadRequest, "auth expects {token}"))
		return
	}
	claims, err := g.verifier.Verify(token)
	if err != nil {
		reply(e, errorAck(codeUnauthorized, err.Error()))
		return
	}
	if claims.Subject != sess.User {
		reply(e, errorAck(codeForbidden, "auth: the token is for another user"))
		return
	}
	next := *sess
	next.claims = keepClaims(claims)
	if n, ok := claims.Raw["name"].(string); ok {
		next.Name = cleanName(n)
	}
	s.SetData(&next)
	var left []string
	for _, room := range s.Rooms() {
		if room == s.ID() || g.mayRejoin(s, room) {
			continue
		}
		if err := s.Leave(room); err != nil {
			reply(e, errorAck(codeUnavailable, err.Error()))
			return
		}
		left = append(left, room)
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
	removed, err := g.dropRevokedMemberships(ctx, &next)
	cancel()
	if err != nil {
		reply(e, errorAck(codeUnavailable, err.Error()))
		return
	}
	left = append(left, removed...)
	slices.Sort(left)
	left = slices.Compact(left)
	if left == nil {
		left = []string{}
	}
	next.life.arm(next.claims.Expiry)
	var exp any
	if !next.claims.Expiry.IsZero() {
		exp = next.claims.Expiry.Unix()
	}
	reply(e, map[string]any{"ok": true, "exp": exp, "left": left})
}

// mayRejoin is the gateway's socketio.Recovery.MayRejoin, and the test of
// the rooms a socket keeps when its token is replaced: the socket's own
// user room, and the rooms its current token lets it join.
func (g *Gateway) mayRejoin(s *socketio.Socket, room string) bool {
	sess := sessionOf(s)
	if strings.HasPrefix(room, userRoomPrefix) {
		return room == userRoom(sess.User)
	}
	return sess.canJoin(room)
}

// dropRevokedMemberships ends the durable-room memberships of sess's user
// that its token does not allow, and returns those rooms.
func (g *Gateway) dropRevokedMemberships(ctx context.Context, sess *Session) ([]string, error) {
	if sess.Anonymous || sess.User == "" || len(g.cfg.DurableRooms) == 0 {
		return nil, nil
	}
	rooms, err := g.store.MemberOf(ctx, sess.User)
	if err != nil {
		return nil, err
	}
	revoked := slices.DeleteFunc(rooms, sess.canJoin)
	if len(revoked) == 0 {
		return nil, nil
	}
	// Memberships are not per namespace: any namespace's UserOperator ends them.
	if err := g.sio.Sockets().ToUser(sess.User).Leave(ctx, revoked...); err != nil {
		return nil, err
	}
	return revoked, nil
}

// checkMemberships is a namespace middleware after authenticate: at every
// connect, new or recovered, the user's durable-room memberships are
// checked against its token. A Store that cannot answer refuses the
// connection, as the Store calls of the connect itself do.
func (g *Gateway) checkMemberships(s *socketio.Socket) error {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
	defer cancel()
	if _, err := g.dropRevokedMemberships(ctx, sessionOf(s)); err != nil {
		return &socketio.ConnectError{Message: "unavailable: " + err.Error(), Reason: "queue"}
	}
	return nil
}
