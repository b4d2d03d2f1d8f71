package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"unicode"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/socketio"
)

// Session is what the gateway knows of a connected socket; it is the
// socket's Data, so FetchSockets on any node sees it.
type Session struct {
	User      string `json:"user"`
	Name      string `json:"name,omitempty"`
	Anonymous bool   `json:"anonymous,omitempty"`
	// Grant is the connect hook's answer (hooks_connect.go); nil without
	// one. Kept in the recovery session, so a recovered socket keeps it.
	Grant *connectGrant `json:"grant,omitempty"`

	claims *auth.Claims
	life   *tokenLife     // the token's expiry timer (token.go); nil when anonymous
	info   any            // the token's info claim, shown in presence (presence.go); nil when none
	hooks  *socketHooks   // the socket's queue of backend calls (hooks_events.go)
	raw    map[string]any // the token's claims until the connect hook has seen them

	userKey, ipKey string // the event-rate buckets (limits.eventKeys); "" when not limited
}

// userRoomPrefix names the room every socket of a user is in. Clients may not
// join rooms with this prefix; direct messages are published to it.
const userRoomPrefix = "user:"

func userRoom(user string) string { return userRoomPrefix + user }

var errTokenRequired = errors.New("auth: token required")

func (g *Gateway) authenticate(s *socketio.Socket) error {
	a := s.Auth()
	token, _ := a["token"].(string)
	sess := &Session{hooks: &socketHooks{}}
	switch {
	case token != "" && g.verifier != nil:
		claims, err := g.verifier.Verify(token)
		if err != nil {
			return &socketio.ConnectError{Message: err.Error(), Reason: "auth"}
		}
		sess.User = claims.Subject
		if n, ok := claims.Raw["name"].(string); ok {
			sess.Name = cleanName(n)
		}
		sess.claims = keepClaims(claims)
		if v, ok := claims.Raw["info"]; ok {
			if b, err := json.Marshal(v); err == nil && len(b) <= maxPresenceInfo {
				sess.info = v
			}
		}
		sess.raw = claims.Raw
		sess.life = &tokenLife{g: g, s: s}
	case token == "" && g.cfg.AllowAnonymous:
		sess.Anonymous = true
		if prev := sessionFromInfo(s.Data()); s.Recovered() && prev.Anonymous && strings.HasPrefix(prev.User, "anon:") {
			sess.User = prev.User // a recovering anonymous client keeps its user (and queue)
			break
		}
		var b [9]byte
		_, _ = rand.Read(b[:])
		sess.User = "anon:" + base64.RawURLEncoding.EncodeToString(b[:])
		if n, ok := a["name"].(string); ok {
			sess.Name = cleanName(n)
		}
	case token != "":
		return &socketio.ConnectError{Message: "auth: tokens are not accepted by this server", Reason: "auth"}
	default:
		return &socketio.ConnectError{Message: errTokenRequired.Error(), Reason: "auth"}
	}
	s.SetData(sess)
	if err := s.Join(userRoom(sess.User)); err != nil {
		return &socketio.ConnectError{Message: "unavailable: " + err.Error(), Reason: "adapter"}
	}
	return nil
}

// cleanName keeps a display name printable and short.
func cleanName(n string) string {
	n = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, strings.TrimSpace(n))
	if r := []rune(n); len(r) > 32 {
		n = string(r[:32])
	}
	return n
}

func sessionOf(s *socketio.Socket) *Session {
	sess, _ := s.Data().(*Session)
	if sess == nil {
		return &Session{}
	}
	return sess
}

func (sess *Session) canJoin(room string) bool {
	if g := sess.Grant; g != nil {
		if g.hasRoom(room) {
			return true
		}
		if g.Join != nil {
			return matchAny(*g.Join, room)
		}
	}
	if sess.Anonymous {
		return true
	}
	return sess.claims != nil && sess.claims.CanJoin(room)
}

func (sess *Session) canPublish(room string) bool {
	if g := sess.Grant; g != nil && g.Publish != nil {
		return matchAny(*g.Publish, room)
	}
	if sess.Anonymous {
		return true
	}
	return sess.claims != nil && sess.claims.CanPublish(room)
}

// canDM reports whether the session may send a direct message to user: a
// signed-in client when its "dm" patterns allow user (the "publish" claim
// does not), an anonymous one only with --allow-anonymous-dm.
func (sess *Session) canDM(user string, allowAnonymous bool) bool {
	if sess.Anonymous {
		return allowAnonymous
	}
	return sess.claims.CanDM(user)
}

// memberOf is the gateway's socketio.Recovery.Member: a signed-in user may
// be a member of a durable room, an anonymous visitor may not.
func memberOf(info adapter.SocketInfo) string {
	sess := sessionFromInfo(info.Data)
	if sess.Anonymous {
		return ""
	}
	return sess.User
}

// sessionFromInfo reads a Session from a SocketInfo's Data, local (*Session)
// or decoded from another node (map).
func sessionFromInfo(data any) Session {
	switch d := data.(type) {
	case *Session:
		return *d
	case map[string]any:
		var s Session
		s.User, _ = d["user"].(string)
		s.Name, _ = d["name"].(string)
		s.Anonymous, _ = d["anonymous"].(bool)
		if gr, ok := d["grant"]; ok {
			s.Grant = grantFromData(gr)
		}
		return s
	}
	return Session{}
}
