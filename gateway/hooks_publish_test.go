package gateway

import (
	"context"
	"testing"

	"github.com/roomcast/roomcast/hook"
	"github.com/roomcast/roomcast/internal/sitest"
)

func TestPublishHook(t *testing.T) {
	t.Parallel()
	url := backend(t, &hook.Handler{OnPublish: func(_ context.Context, req *hook.PublishRequest) (*hook.PublishResponse, error) {
		switch req.Data {
		case "spam":
			return &hook.PublishResponse{Message: "no spam"}, nil
		case "rude":
			return &hook.PublishResponse{Accept: true, Rewrite: &hook.Rewrite{Data: "***"}}, nil
		}
		return &hook.PublishResponse{Accept: true}, nil
	}})
	n := start(t, Config{PublishHooks: []string{"moderated:*=" + url}, HookSecret: hookSecret})
	claims := map[string]any{"join": []string{"*"}, "publish": []string{"*"}}
	alice := sitest.Dial(t, n.wsURL)
	claims["sub"] = "alice"
	alice.Connect("/", authPayload(token(t, claims)))
	bob := sitest.Dial(t, n.wsURL)
	claims["sub"] = "bob"
	bob.Connect("/", authPayload(token(t, claims)))
	for i, room := range []string{"moderated:1", "free"} {
		bob.Send(`42` + string(rune('1'+i)) + `["join","` + room + `"]`)
		bob.Read()
	}
	for _, c := range []struct{ send, ack, bob string }{
		{`421["publish",{"room":"moderated:1","event":"m","data":"spam"}]`, `431[{"error":{"code":"forbidden","message":"no spam"}}]`, ""},
		{`422["publish",{"room":"moderated:1","event":"m","data":"rude"}]`, `432[{"ok":true}]`, `42["m","***",{"room":"moderated:1","user":"alice"}]`},
		{`423["publish",{"room":"moderated:1","event":"m","data":"hi"}]`, `433[{"ok":true}]`, `42["m","hi",{"room":"moderated:1","user":"alice"}]`},
		{`424["publish",{"room":"free","event":"m","data":"spam"}]`, `434[{"ok":true}]`, `42["m","spam",{"room":"free","user":"alice"}]`},
	} {
		alice.Send(c.send)
		if got := alice.Read(); got != c.ack {
			t.Fatalf("%s: ack %s", c.send, got)
		}
		if c.bob != "" {
			if got, _ := readEvent(t, bob); got != c.bob {
				t.Fatalf("%s: bob got %s", c.send, got)
			}
		}
	}
}
