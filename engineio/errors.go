package engineio

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Sentinel errors. OnClose receives them (possibly wrapped) as its err
// argument; Send returns ErrClosed and ErrSlowConsumer.
var (
	// ErrClosed is returned by Send once the session has ended or is ending.
	ErrClosed = errors.New("engineio: connection closed")
	// ErrSlowConsumer is returned by Send when the frames would push the
	// connection's send queue over Config.MaxQueueBytes; the connection is
	// closed with reason "slow consumer".
	ErrSlowConsumer = errors.New("engineio: slow consumer")
	// ErrInvalidConfig is wrapped by New for a Config it cannot use.
	ErrInvalidConfig = errors.New("engineio: invalid config")
	// ErrPayloadTooLarge: an HTTP body or websocket message over Config.MaxPayload.
	ErrPayloadTooLarge = errors.New("engineio: payload too large")
	// ErrParse: a packet or payload that is not valid Engine.IO v4.
	ErrParse = errors.New("engineio: malformed packet")
	// ErrPollOverlap: a second GET or POST while one is pending (the client
	// must not have more than one of each in flight).
	ErrPollOverlap = errors.New("engineio: overlapping polling requests")
	// ErrPollAborted: the client went away while its request was pending.
	ErrPollAborted = errors.New("engineio: polling request aborted")
	// ErrBinaryPost: a POST with Content-Type application/octet-stream, which
	// Engine.IO v4 does not allow (binary goes base64 in the text payload).
	ErrBinaryPost = errors.New("engineio: binary polling body")
	// ErrHeartbeatDirection: the client sent a ping; in v4 only the server pings.
	ErrHeartbeatDirection = errors.New("engineio: invalid heartbeat direction")
	// ErrHandoverRefused: the session cannot be handed over now (it is not
	// a polling session, an upgrade is under way, its layer above cannot
	// move, or it ended).
	ErrHandoverRefused = errors.New("engineio: session cannot be handed over")
	// ErrHandoverUnsupported is what a HandoverSource's Begin returns when
	// the node that holds the session does not hand sessions over: the
	// upgrade can still be forwarded to it.
	ErrHandoverUnsupported = errors.New("engineio: the session's node does not hand sessions over")
)

// Reason says why a session, or a socket on it, ended: the disconnect
// reasons of socket.io, byte for byte (they reach clients' logs, the API and
// the labels of roomcast_disconnects_total). The engine reports the first
// seven through Handlers.OnClose; the Socket.IO layer adds the next three
// for a namespace that ends without its connection; ReasonTokenExpired is
// given by the application (Conn.CloseReason, socketio's Socket.Close).
type Reason string

// The disconnect reasons.
const (
	ReasonTransportClose Reason = "transport close"
	ReasonTransportError Reason = "transport error"
	ReasonPingTimeout    Reason = "ping timeout"
	ReasonParseError     Reason = "parse error"
	ReasonForcedClose    Reason = "forced close"
	ReasonServerShutdown Reason = "server shutting down"
	ReasonSlowConsumer   Reason = "slow consumer" // send queue over MaxQueueBytes

	ReasonClientNamespaceDisconnect Reason = "client namespace disconnect"
	ReasonServerNamespaceDisconnect Reason = "server namespace disconnect"
	ReasonForcedServerClose         Reason = "forced server close"

	// ReasonTokenExpired is a Roomcast extension: the connection was closed
	// because the token of a socket on it expired (the gateway closes it at
	// the token's "exp" so that the client reconnects with a fresh one).
	ReasonTokenExpired Reason = "token expired"

	// ReasonHandover is a Roomcast extension: the session moved to the
	// node that received its websocket upgrade (Conn.Handover). The client
	// is not disconnected: its sockets go on there, recovered.
	ReasonHandover Reason = "transport handover"
)

// Reasons lists every Reason, in the order metrics initialise their labels.
func Reasons() []Reason {
	return []Reason{
		ReasonTransportClose, ReasonTransportError, ReasonPingTimeout, ReasonParseError,
		ReasonForcedClose, ReasonServerShutdown, ReasonSlowConsumer,
		ReasonClientNamespaceDisconnect, ReasonServerNamespaceDisconnect, ReasonForcedServerClose,
		ReasonTokenExpired, ReasonHandover,
	}
}

// Explicit reports whether the reason is a deliberate namespace disconnect
// (by the client or the server), which ends a socket's session for good
// instead of leaving it recoverable.
func (r Reason) Explicit() bool {
	return r == ReasonClientNamespaceDisconnect || r == ReasonServerNamespaceDisconnect
}

// ErrorCode is the "code" of the JSON body of a refused HTTP request, as
// engine.io numbers them.
type ErrorCode int

// Engine.IO error codes. CodeShuttingDown is a Roomcast extension used with
// HTTP 503 while the server drains; CodeTooManyRequests, another, answers
// HTTP 429 to a handshake refused by Config.AllowRequest with a
// *TooManyRequestsError.
const (
	CodeUnknownTransport    ErrorCode = 0
	CodeUnknownSID          ErrorCode = 1
	CodeBadHandshakeMethod  ErrorCode = 2
	CodeBadRequest          ErrorCode = 3
	CodeForbidden           ErrorCode = 4
	CodeUnsupportedProtocol ErrorCode = 5
	CodeShuttingDown        ErrorCode = 6
	CodeTooManyRequests     ErrorCode = 7
)

var codeMessages = [...]string{
	CodeUnknownTransport:    "Transport unknown",
	CodeUnknownSID:          "Session ID unknown",
	CodeBadHandshakeMethod:  "Bad handshake method",
	CodeBadRequest:          "Bad request",
	CodeForbidden:           "Forbidden",
	CodeUnsupportedProtocol: "Unsupported protocol version",
	CodeShuttingDown:        "Server shutting down",
	CodeTooManyRequests:     "Too many requests",
}

// Message returns the message engine.io sends with the code.
func (c ErrorCode) Message() string {
	if c < 0 || int(c) >= len(codeMessages) {
		return "Unknown error"
	}
	return codeMessages[c]
}

// status is the HTTP status a refusal with code c is answered with.
func (c ErrorCode) status() int {
	switch c {
	case CodeForbidden:
		return http.StatusForbidden
	case CodeShuttingDown:
		return http.StatusServiceUnavailable
	case CodeTooManyRequests:
		return http.StatusTooManyRequests
	default:
		return http.StatusBadRequest
	}
}

// errorBodies holds the pre-encoded JSON body of every code.
var errorBodies = func() [len(codeMessages)][]byte {
	var out [len(codeMessages)][]byte
	for i, msg := range codeMessages {
		out[i] = []byte(`{"code":` + strconv.Itoa(i) + `,"message":` + strconv.Quote(msg) + `}`)
	}
	return out
}()

// TooManyRequestsError, returned by Config.AllowRequest, refuses a handshake
// with HTTP 429 {"code":7,"message":"Too many requests"} and, when
// RetryAfter is positive, a Retry-After header (whole seconds, rounded up).
type TooManyRequestsError struct {
	RetryAfter time.Duration
}

func (e *TooManyRequestsError) Error() string { return "engineio: too many requests" }

// writeError answers a refused request with engine.io's JSON error body.
func writeError(w http.ResponseWriter, code ErrorCode) {
	body := errorBodies[code]
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code.status())
	_, _ = w.Write(body)
}
