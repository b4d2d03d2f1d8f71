package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/internal/redistest"
)

// sseEvent is one event of a stream.
type sseEvent struct{ id, event, data string }

// sseClient reads an event stream.
type sseClient struct {
	t      testing.TB
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// openSSE opens GET /sse on base; lastID is sent as Last-Event-ID.
func openSSE(t testing.TB, base, query, lastID string) (*sseClient, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/sse?"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &sseClient{t: t, resp: resp, events: make(chan sseEvent, 100), cancel: cancel}
	t.Cleanup(c.close)
	if resp.StatusCode != http.StatusOK {
		return c, resp.StatusCode
	}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return c, resp.StatusCode
}

func (c *sseClient) close() {
	c.cancel()
	c.resp.Body.Close()
}

func (c *sseClient) next() sseEvent {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			c.t.Fatal("stream ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		c.t.Fatal("no event within 5s")
	}
	return sseEvent{}
}

// expect reads n events and returns them by event name, and the id of
// the last one (the offset after all of them).
func (c *sseClient) expect(n int) (map[string]sseEvent, string) {
	c.t.Helper()
	got := map[string]sseEvent{}
	var last string
	for range n {
		ev := c.next()
		got[ev.event], last = ev, ev.id
	}
	return got, last
}

func emit(t testing.TB, base, body string) {
	t.Helper()
	if code, resp := do(t, http.MethodPost, base+"/api/v1/emit", "api", body); code/100 != 2 {
		t.Fatalf("emit %s: %d %v", body, code, resp)
	}
}

// TestSSEStreamsAndResumes: a stream gets the user's durable messages and
// its rooms' broadcasts with offsets as ids, and a stream opened with
// Last-Event-ID — on another node — gets exactly what was missed.
func TestSSEStreamsAndResumes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"memory", false}, {"redis, resumed on another node", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{APIToken: "api"}
			var a, b *node
			if tc.redis {
				if testing.Short() {
					t.Skip("starts redis-server")
				}
				redis.SetLogger(nopRedisLogger{})
				rs := redistest.Start(t)
				cfg.Redis, cfg.Origins = rs.URL(), []string{"*"}
				a, b = start(t, cfg), start(t, cfg)
			} else {
				a = start(t, cfg)
				b = a
			}
			tok := token(t, map[string]any{"sub": "reader", "join": []string{"news:*"}})
			q := "token=" + url.QueryEscape(tok) + "&rooms=news:1"
			s, code := openSSE(t, a.base, q, "")
			if code != http.StatusOK {
				t.Fatalf("GET /sse: %d", code)
			}
			emit(t, a.base, `{"event":"headline","args":["first"],"rooms":["news:1"]}`)
			emit(t, a.base, `{"event":"other","args":["not mine"],"rooms":["news:2"]}`)
			emit(t, a.base, `{"event":"dm","args":[{"n":1}],"users":["reader"]}`)
			got, last := s.expect(2)
			if got["headline"].data != `["first"]` || got["dm"].data != `[{"n":1}]` {
				t.Fatalf("events %+v", got)
			}
			if !offsetSuffix.MatchString(`,"` + last + `"]`) {
				t.Fatalf("id %q is not an offset", last)
			}
			s.close()

			emit(t, b.base, `{"event":"headline","args":["missed"],"rooms":["news:1"]}`)
			emit(t, b.base, `{"event":"dm","args":[{"n":2}],"users":["reader"]}`)
			r, code := openSSE(t, b.base, q, last)
			if code != http.StatusOK {
				t.Fatalf("GET /sse again: %d", code)
			}
			got, _ = r.expect(2)
			if got["headline"].data != `["missed"]` || got["dm"].data != `[{"n":2}]` {
				t.Fatalf("resumed with %+v, want exactly the two missed", got)
			}
			emit(t, a.base, `{"event":"live","args":[3],"rooms":["news:1"]}`)
			if ev := r.next(); ev.event != "live" || ev.data != `[3]` {
				t.Fatalf("live after resume: %+v", ev)
			}
		})
	}
}

func TestSSERefusals(t *testing.T) {
	t.Parallel()
	n := start(t, Config{APIToken: "api", MaxConnsPerUser: 1})
	tok := token(t, map[string]any{"sub": "u", "join": []string{"news:*"}})
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"rooms=news:1", http.StatusUnauthorized},
		{"token=garbage&rooms=news:1", http.StatusUnauthorized},
		{"token=" + url.QueryEscape(tok) + "&rooms=secret", http.StatusForbidden},
		{"token=" + url.QueryEscape(tok) + "&rooms=user:x", http.StatusForbidden},
		{"token=" + url.QueryEscape(tok) + "&namespace=/nope", http.StatusNotFound},
	} {
		if _, code := openSSE(t, n.base, tc.query, ""); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.query, code, tc.want)
		}
	}
	// Connection caps count streams as they count sockets.
	if _, code := openSSE(t, n.base, "token="+url.QueryEscape(tok), ""); code != http.StatusOK {
		t.Fatalf("first stream: %d", code)
	}
	if _, code := openSSE(t, n.base, "token="+url.QueryEscape(tok), ""); code != http.StatusTooManyRequests {
		t.Fatalf("second stream of a user capped at 1: %d, want 429", code)
	}
}

func TestSplitSSEOffset(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][3]string{
		"":        {"", "", "false"},
		"1-0~2-0": {"1-0", "2-0", "true"},
		"1-0":     {"1-0", "", "true"},
	} {
		u, l, ok := splitSSEOffset(in)
		if got := [3]string{u, l, fmt.Sprint(ok)}; got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}
