package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/adapter"
	"github.com/roomcast/roomcast/internal/sitest"
)

// An emit names its audience: no selector, or only empty lists, is a 400,
// never a broadcast to the whole namespace; broadcast: true is.
func TestAPIEmitSelectors(t *testing.T) {
	t.Parallel()
	n := start(t, Config{APIToken: "api"})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "bystander"})))

	for _, body := range []string{
		`{"event":"news","args":[1]}`,
		`{"event":"news","users":[],"args":[1]}`,
		`{"event":"news","rooms":[],"args":[1]}`,
		`{"event":"news","rooms":[],"users":[],"sockets":[],"except":["x"],"args":[1]}`,
		`{"event":"news","broadcast":false,"args":[1]}`,
		`{"event":"news","broadcast":true,"rooms":["r"],"args":[1]}`,
		`{"event":"news","users":[""],"args":[1]}`,
		`{"event":"news","users":["` + strings.Repeat("x", 257) + `"],"args":[1]}`,
		`{"event":"news","users":["a\u0000b"],"args":[1]}`,
		`{"event":"news","users":["a\nb"],"args":[1]}`,
		`{"event":"news","rooms":[""],"args":[1]}`,
		`{"event":"news","rooms":["r\u007f"],"args":[1]}`,
		`{"event":"news","sockets":[""],"args":[1]}`,
		`{"event":"news","rooms":["r"],"except":[""],"args":[1]}`,
		`{"event":"roomcast:not-recovered","broadcast":true,"args":[1]}`,
		`{"event":"roomcast:token-expiring","users":["bystander"],"args":[1]}`,
		`{"event":"disconnect","broadcast":true,"args":[1]}`,
	} {
		code, resp := do(t, "POST", n.base+"/api/v1/emit", "api", body)
		errObj, _ := resp["error"].(map[string]any)
		if code != http.StatusBadRequest || errObj["code"] != codeBadRequest {
			t.Errorf("%s: %d %v, want 400 bad_request", body, code, resp)
		}
	}
	// Nothing of the above reached the bystander: the broadcast below is
	// the first event it reads.
	if code, resp := do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"all","broadcast":true,"args":[2]}`); code != http.StatusOK {
		t.Fatalf("broadcast: %d %v", code, resp)
	}
	if got, _ := readEvent(t, c); got != `42["all",2]` {
		t.Fatalf("bystander got %s, want the broadcast only", got)
	}
	// The same names are refused wherever the API selects sockets.
	if code, resp := do(t, "POST", n.base+"/api/v1/sockets/join", "api", `{"users":[""],"join":["r"]}`); code != http.StatusBadRequest {
		t.Fatalf("join with an empty user id: %d %v", code, resp)
	}
}

// Clients cannot publish Roomcast's own control events.
func TestPublishReservedPrefix(t *testing.T) {
	t.Parallel()
	n := start(t, Config{})
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", authPayload(token(t, map[string]any{"sub": "forger", "join": []string{"*"}, "publish": []string{"*"}})))
	c.Send(`421["publish",{"room":"r","event":"roomcast:not-recovered","data":{}}]`)
	if got := c.Read(); !strings.HasPrefix(got, `431[{"error":{"code":"bad_request"`) {
		t.Fatalf("publish of roomcast:not-recovered: %s", got)
	}
}

// A sockets/join or sockets/leave that some node did not confirm in time is
// a 504 not_confirmed (it may or may not have been applied), one a node
// could not store a 503 unavailable: never a 200.
func TestMoveErrorStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: join confirmed by 0 of 1 other nodes", adapter.ErrAckTimeout), http.StatusGatewayTimeout, codeNotConfirmed},
		{fmt.Errorf("%w: node %q could not store the change: down", adapter.ErrUnavailable, "b"), http.StatusServiceUnavailable, codeUnavailable},
	} {
		var ae *apiError
		if !errors.As(membershipError(tc.err), &ae) {
			ae = &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable} // what apiHandler makes of it
		}
		if ae.status != tc.status || ae.code != tc.code {
			t.Errorf("%v: %d %s, want %d %s", tc.err, ae.status, ae.code, tc.status, tc.code)
		}
	}
}
