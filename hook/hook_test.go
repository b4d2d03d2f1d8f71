package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

var secret = []byte("s3cret")

func TestSignVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"type":"event"}`)
	sig := Sign(secret, ts, body)
	for _, c := range []struct {
		name    string
		ts, sig string
		body    []byte
		now     time.Time
		secrets [][]byte
		want    error
	}{
		{"good", ts, sig, body, now, [][]byte{secret}, nil},
		{"rotated", ts, "v1=00," + sig, body, now, [][]byte{[]byte("old"), secret}, nil},
		{"other body", ts, sig, []byte(`{"type":"connect"}`), now, [][]byte{secret}, ErrBadSignature},
		{"other secret", ts, sig, body, now, [][]byte{[]byte("x")}, ErrBadSignature},
		{"stale", ts, sig, body, now.Add(6 * time.Minute), [][]byte{secret}, ErrStale},
		{"future", ts, sig, body, now.Add(-6 * time.Minute), [][]byte{secret}, ErrStale},
		{"missing", "", sig, body, now, [][]byte{secret}, ErrNoSignature},
		{"not v1", ts, sig[3:], body, now, [][]byte{secret}, ErrBadSignature},
	} {
		if err := Verify(c.ts, c.sig, c.body, c.now, 0, c.secrets...); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h := &Handler{
		Secrets: [][]byte{secret},
		OnEvent: func(_ context.Context, req *EventRequest) (*EventResponse, error) {
			b, ok := BinaryOf(req.Args[0])
			if !ok {
				return nil, errors.New("no binary")
			}
			return &EventResponse{Ack: []any{Binary(append(b, '!')), req.User}}, nil
		},
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(body []byte, sign bool) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		if sign {
			req.Header.Set(HeaderSignature, Sign(secret, ts, body))
		} else {
			req.Header.Set(HeaderSignature, Sign([]byte("forged"), ts, body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}
	body, _ := json.Marshal(EventRequest{Type: TypeEvent, Socket: Socket{User: "ann"}, Args: []any{Binary([]byte("hi"))}})
	resp, out := post(body, true)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	er, err := DecodeEventResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := BinaryOf(er.Ack[0]); string(b) != "hi!" || er.Ack[1] != "ann" {
		t.Fatalf("ack %v", er.Ack)
	}
	if resp, _ := post(body, false); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged: %d", resp.StatusCode)
	}
	connect, _ := json.Marshal(ConnectRequest{Type: TypeConnect})
	if resp, _ := post(connect, true); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("no OnConnect: %d", resp.StatusCode)
	}
}

func TestDecodeEventResponse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{``, true},
		{`{}`, true},
		{`{"ack":[1,"a",{"$binary":"AQI="}],"join":["r"],"emit":[{"rooms":["r"],"event":"e"}],"disconnect":true}`, true},
		{`{"ack":1}`, false},
		{`{} {}`, false},
		{`[`, false},
	} {
		_, err := DecodeEventResponse([]byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("%q: %v", c.body, err)
		}
	}
}

func FuzzDecodeEventResponse(f *testing.F) {
	for _, s := range []string{
		`{"ack":[1,"a",{"$binary":"AQI="}],"join":["r"],"leave":["x"],"emit":[{"rooms":["r"],"users":["u"],"event":"e","args":[null,{"$binary":"/w=="}]}],"disconnect":true}`,
		`{"accept":true,"user":"u","rooms":["a"],"join":[],"publish":["p:*"],"session":{"k":1}}`,
		`{"accept":false,"message":"no","rewrite":{"event":"e","data":[1]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		er, err := DecodeEventResponse(body)
		if err != nil {
			return
		}
		for _, a := range er.Ack {
			BinaryOf(a)
		}
		// What decodes re-encodes and decodes the same.
		again, err := json.Marshal(er)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodeEventResponse(again); err != nil {
			t.Fatalf("re-decode %s: %v", again, err)
		}
		_, _ = DecodeConnectResponse(body)
		_, _ = DecodePublishResponse(body)
	})
}

func TestHandlerLifecycle(t *testing.T) {
	t.Parallel()
	var got []LifecycleEvent
	fail := true
	h := &Handler{
		Secrets: [][]byte{secret},
		OnLifecycle: func(_ context.Context, req *LifecycleRequest) error {
			if fail {
				fail = false
				return errors.New("not now")
			}
			got = append(got, req.Events...)
			return nil
		},
	}
	post := func(body []byte) int {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(secret, ts, body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	body := []byte(`{"type":"lifecycle","id":"b1","events":[{"id":"connect-1","type":"connect","namespace":"/","socket":"s1","user":"u","node":"n","members":0,"time":1}]}`)
	if code := post(body); code != http.StatusInternalServerError {
		t.Fatalf("failing handler: %d", code)
	}
	if code := post(body); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if len(got) != 1 || got[0].ID != "connect-1" || got[0].Socket != "s1" {
		t.Fatalf("events %+v", got)
	}
	if code := post([]byte(`{"type":"lifecycle","id":"b2","events":[{"type":"connect"}]}`)); code != http.StatusBadRequest {
		t.Fatalf("event without id: %d", code)
	}
}

func TestDecodeLifecycleRequest(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"type":"lifecycle","id":"x","events":[]}`, true},
		{`{"type":"lifecycle","id":"x","events":[{"id":"a","type":"join","room":"r","info":{"name":"A"},"members":2}]}`, true},
		{`{"type":"event"}`, false},
		{``, false},
		{`{"type":"lifecycle","events":[{"id":"a"}]}`, false},
		{`{"type":"lifecycle","events":{}}`, false},
		{`{"type":"lifecycle"} {}`, false},
	} {
		_, err := DecodeLifecycleRequest([]byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("%q: %v", c.body, err)
		}
	}
}

func FuzzDecodeLifecycleRequest(f *testing.F) {
	for _, s := range []string{
		`{"type":"lifecycle","id":"x","events":[{"id":"join-1","type":"join","namespace":"/","room":"r","socket":"s","user":"u","info":{"name":"A"},"node":"n","members":2,"time":1}]}`,
		`{"type":"lifecycle","id":"y","events":[{"id":"disconnect-1","type":"disconnect","namespace":"/chat","socket":"s","user":"u","node":"n","reason":"node lost","members":0,"time":2},{"id":"vacated-1","type":"vacated","namespace":"/","room":"r","node":"n","members":0,"time":3}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeLifecycleRequest(body)
		if err != nil {
			return
		}
		// What decodes re-encodes and decodes the same.
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		req2, err := DecodeLifecycleRequest(again)
		if err != nil {
			t.Fatalf("re-decode %s: %v", again, err)
		}
		if len(req2.Events) != len(req.Events) || req2.ID != req.ID {
			t.Fatalf("round trip %s", again)
		}
	})
}
