package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/sitest"
)

// TestJoinHistory: join {room, rewind: n} replays the room's last n
// broadcasts before its ack, {room, since} those after an offset; the API
// serves the same history and answers 410 for a since it no longer keeps.
func TestJoinHistory(t *testing.T) {
	t.Parallel()
	n := start(t, Config{APIToken: "api"})
	for i := 1; i <= 5; i++ {
		if code, body := do(t, "POST", n.base+"/api/v1/emit", "api", fmt.Sprintf(`{"event":"m","rooms":["room:h"],"args":[%d]}`, i)); code != http.StatusOK {
			t.Fatalf("emit: %d %v", code, body)
		}
		_, _ = do(t, "POST", n.base+"/api/v1/emit", "api", `{"event":"m","rooms":["room:other"],"args":[0]}`)
	}
	tok := authPayload(token(t, map[string]any{"sub": "h", "join": []string{"*"}}))
	c := sitest.Dial(t, n.wsURL)
	c.Connect("/", tok)
	c.Send(`421["join",{"room":"room:h","rewind":2}]`)
	var third string
	for _, want := range []string{`42["m",4]`, `42["m",5]`, `431[{"ok":true}]`} {
		if got := c.Read(); !strings.HasPrefix(got, strings.TrimSuffix(want, "]")) {
			t.Fatalf("join with rewind: got %s, want %s", got, want)
		}
	}
	code, body := do(t, "GET", n.base+"/api/v1/history?room=room:h&limit=10", "api", "")
	entries, _ := body["entries"].([]any)
	if code != http.StatusOK || len(entries) != 5 {
		t.Fatalf("history: %d %v", code, body)
	}
	third = entries[2].(map[string]any)["offset"].(string)
	c.Send(fmt.Sprintf(`422["join",{"room":"room:h","since":%q}]`, third))
	for _, want := range []string{`42["m",4]`, `42["m",5]`, `432[{"ok":true}]`} {
		if got := c.Read(); !strings.HasPrefix(got, strings.TrimSuffix(want, "]")) {
			t.Fatalf("join with since: got %s, want %s", got, want)
		}
	}
	code, body = do(t, "GET", n.base+"/api/v1/history?room=room:h&since="+third, "api", "")
	if entries, _ := body["entries"].([]any); code != http.StatusOK || len(entries) != 2 {
		t.Fatalf("history since: %d %v", code, body)
	}
	if code, body := do(t, "GET", n.base+"/api/v1/history?room=room:h&since=9999999999999-0", "api", ""); code != http.StatusGone {
		t.Fatalf("history since a position the log does not hold: %d %v", code, body)
	}
}
