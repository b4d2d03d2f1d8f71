package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/queue"
	"github.com/roomcast/roomcast/queue/internal/core"
)

// RunContract runs the contract every Store implements against the Stores
// newStore makes, as parallel subtests.
func RunContract(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore Factory)
	}{
		{"AppendRead", testAppendRead},
		{"AppendManyUsers", testAppendManyUsers},
		{"Offsets", testOffsets},
		{"MaxLen", testMaxLen},
		{"Retention", testRetention},
		{"Live", testLive},
		{"LiveMatchesRead", testLiveMatchesRead},
		{"Sessions", testSessions},
		{"Members", testMembers},
		{"MemberOf", testMemberOf},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore)
		})
	}
}

// Sample holds messages with every kind of content: arguments, binary
// attachments (one empty, one of 70,000 bytes), no data, and names that
// look like the Redis codec's frames.
var Sample = []queue.Message{
	{Namespace: "/", Event: "chat", Data: json.RawMessage(`["hello",{"n":1}]`)},
	{Namespace: "/admin", Event: "file", Data: json.RawMessage(`["f",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`),
		Attachments: [][]byte{{0, 1, 2, 255, ':', '9'}, {}}},
	{Namespace: "/", Event: "", Data: nil},
	{Namespace: "/ünï", Event: "8:colon:", Data: json.RawMessage(`["12:x"]`)},
	{Namespace: "/", Event: "big", Data: json.RawMessage(`["` + string(make([]byte, 0)) + `x"]`), Attachments: [][]byte{make([]byte, 70000)}},
}

func testAppendRead(t *testing.T, newStore Factory) {
	st := newStore(t, Config{})
	ctx := Ctx(t)
	floor := MustLast(t, st, "alice")
	bobFloor := MustLast(t, st, "bob") // the store knows bob from now on
	if got, err := st.Read(ctx, "alice", floor, 10); err != nil || len(got) != 0 {
		t.Fatalf("Read of an empty stream = %v, %v; want nothing", got, err)
	}
	var want []queue.Message
	prev := floor
	for _, m := range Sample {
		id := MustAppend(t, st, []string{"alice"}, m)[0]
		if c, err := queue.CompareOffsets(prev, id); err != nil || c != -1 {
			t.Fatalf("id %s does not follow %s (%d, %v)", id, prev, c, err)
		}
		prev = id
		m.ID = id
		want = append(want, m)
	}
	if last := MustLast(t, st, "alice"); last != prev {
		t.Fatalf("Last = %s, want %s", last, prev)
	}
	tests := []struct {
		after string
		limit int
		want  []queue.Message
	}{
		{floor, 100, want},
		{floor, 2, want[:2]},
		{floor, 0, want}, // default page size
		{want[1].ID, 100, want[2:]},
		{want[3].ID, 1, want[4:5]},
		{want[4].ID, 100, nil},
	}
	for _, tc := range tests {
		got, err := st.Read(ctx, "alice", tc.after, tc.limit)
		if err != nil {
			t.Fatalf("Read(%s, %d): %v", tc.after, tc.limit, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("Read(%s, %d) = %d messages, want %d", tc.after, tc.limit, len(got), len(tc.want))
		}
		for i := range got {
			if !SameMessage(got[i], tc.want[i]) {
				t.Fatalf("Read(%s)[%d] = %+v, want %+v", tc.after, i, got[i], tc.want[i])
			}
		}
	}
	// Another user's stream is separate.
	if got, err := st.Read(ctx, "bob", bobFloor, 10); err != nil || len(got) != 0 {
		t.Fatalf("bob's stream = %v, %v", got, err)
	}
}

func testAppendManyUsers(t *testing.T, newStore Factory) {
	st := newStore(t, Config{})
	ctx := Ctx(t)
	users := []string{"u1", "u2", "u1", "u3", "{weird}user", "a}b"}
	floors := map[string]string{}
	for _, u := range users {
		floors[u] = MustLast(t, st, u)
	}
	got := MustAppend(t, st, users, Sample[0])
	if got[0] != got[2] {
		t.Fatalf("a user listed twice got two ids: %v", got)
	}
	for i, u := range users {
		msgs, err := st.Read(ctx, u, floors[u], 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 || msgs[0].ID != got[i] {
			t.Fatalf("%s's stream = %v, want the one entry %s", u, IDs(msgs), got[i])
		}
	}
	if out, err := st.Append(ctx, nil, Sample[0]); err != nil || len(out) != 0 {
		t.Fatalf("Append to nobody = %v, %v", out, err)
	}
	if _, err := st.Append(ctx, []string{"u1", ""}, Sample[0]); !errors.Is(err, queue.ErrInvalidArgument) {
		t.Fatalf("Append to an empty user: %v", err)
	}
}

func testOffsets(t *testing.T, newStore Factory) {
	st := newStore(t, Config{})
	ctx := Ctx(t)
	for _, bad := range []string{"", "abc", "1", "1-", "-1", "01-0", "1-01", "1-x", "+1-0", "1--1", "99999999999999999999-0"} {
		if _, err := st.Read(ctx, "u", bad, 10); !errors.Is(err, queue.ErrInvalidOffset) {
			t.Errorf("Read(%q) = %v, want queue.ErrInvalidOffset", bad, err)
		}
	}
	floor := MustLast(t, st, "u")
	fl, _ := core.ParseID(floor)
	future := core.ID{Ms: fl.Ms + 3600_000}.String()
	expired := []struct{ name, after string }{
		{"zero offset (older than any retention)", "0-0"},
		{"a year ago", core.ID{Ms: fl.Ms - 365*24*3600_000}.String()},
		{"future, missing stream", future},
	}
	for _, tc := range expired {
		if _, err := st.Read(ctx, "u", tc.after, 10); !errors.Is(err, queue.ErrOffsetExpired) {
			t.Errorf("%s: Read(%s) = %v, want queue.ErrOffsetExpired", tc.name, tc.after, err)
		}
	}
	id := MustAppend(t, st, []string{"u"}, Sample[0])[0]
	if _, err := st.Read(ctx, "u", future, 10); !errors.Is(err, queue.ErrOffsetExpired) {
		t.Errorf("future offset on an existing stream: %v", err)
	}
	// An offset between the floor and the entry is valid.
	if got, err := st.Read(ctx, "u", floor, 10); err != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("Read(floor) = %v, %v", got, err)
	}
	// Comparison.
	cases := []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0}, {"1-1", "1-0", 1}, {"1-0", "2-0", -1}, {"10-0", "9-5", 1},
		{"5-18446744073709551615", "6-0", -1}, {"5-9", "5-10", -1},
	}
	for _, c := range cases {
		if got, err := queue.CompareOffsets(c.a, c.b); err != nil || got != c.want {
			t.Errorf("queue.CompareOffsets(%s, %s) = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
	if _, err := queue.CompareOffsets("x", "1-0"); !errors.Is(err, queue.ErrInvalidOffset) {
		t.Errorf("queue.CompareOffsets of garbage: %v", err)
	}
}

// testMaxLen checks that a full stream (by entries or by bytes) refuses a
// message for its user, keeps every entry it holds (nothing is trimmed to
// make room: Read from the first offset still returns the whole history),
// and that the other users of the same Append get the message.
func testMaxLen(t *testing.T, newStore Factory) {
	t.Run("entries", func(t *testing.T) {
		const maxLen = 10
		st := newStore(t, Config{MaxLen: maxLen})
		floor := MustLast(t, st, "u")
		before := fmt.Sprintf("%d-0", time.Now().Add(-time.Minute).UnixMilli())
		var all []string
		for i := range maxLen {
			all = append(all, MustAppend(t, st, []string{"u"}, MsgN(i))[0])
		}
		for i := range 3 {
			got, err := st.Append(Ctx(t), []string{"v", "u", "w", "u"}, MsgN(100+i))
			checkRefused(t, got, err, []bool{true, false, true, false})
		}
		h, err := ReadAll(t, st, "u", floor)
		if err != nil || !slices.Equal(IDs(h), all) {
			t.Fatalf("history of the full stream = %v, %v; want its %d entries, untrimmed", IDs(h), err, maxLen)
		}
		if h, err := ReadAll(t, st, "v", before); err != nil || len(h) != 3 {
			t.Fatalf("the other user got %d messages, %v; want 3", len(h), err)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		m := queue.Message{Namespace: "/", Event: "e", Data: []byte(`["` + strings.Repeat("x", 96) + `"]`),
			Attachments: [][]byte{make([]byte, 200)}}
		size := m.Size()
		if size != 1+100+200 {
			t.Fatalf("Size = %d, want event + JSON arguments + attachments = 301", size)
		}
		st := newStore(t, Config{MaxBytes: int64(3 * size)})
		floor := MustLast(t, st, "u")
		for range 3 {
			MustAppend(t, st, []string{"u"}, m)
		}
		got, err := st.Append(Ctx(t), []string{"u"}, m)
		checkRefused(t, got, err, []bool{false})
		got, err = st.Append(Ctx(t), []string{"u"}, MsgN(1)) // a few bytes are still too many
		checkRefused(t, got, err, []bool{false})
		if h, err := ReadAll(t, st, "u", floor); err != nil || len(h) != 3 {
			t.Fatalf("history = %d entries, %v; want 3", len(h), err)
		}
		big := queue.Message{Namespace: "/", Event: "e", Data: []byte(`[1]`), Attachments: [][]byte{make([]byte, 3*size)}}
		got, err = st.Append(Ctx(t), []string{"fresh"}, big)
		checkRefused(t, got, err, []bool{false})
	})
}

// checkRefused checks an Append's answer: stored[i] says whether position i
// got an ID; the others must be refused with queue.ErrQueueFull.
func checkRefused(t testing.TB, got []string, err error, stored []bool) {
	t.Helper()
	var ae *queue.AppendError
	if !errors.As(err, &ae) || !errors.Is(err, queue.ErrQueueFull) || len(ae.Errs) != len(stored) {
		t.Fatalf("Append = %v, %v; want an *AppendError with ErrQueueFull for %d users", got, err, len(stored))
	}
	if len(got) != len(stored) {
		t.Fatalf("Append returned %d ids for %d users", len(got), len(stored))
	}
	for i, ok := range stored {
		if ok != (got[i] != "") || ok != (ae.Errs[i] == nil) {
			t.Fatalf("user %d: id %q, error %v; want stored=%v", i, got[i], ae.Errs[i], ok)
		}
		if !ok && !errors.Is(ae.Errs[i], queue.ErrQueueFull) {
			t.Fatalf("user %d: %v, want ErrQueueFull", i, ae.Errs[i])
		}
	}
}

func testRetention(t *testing.T, newStore Factory) {
	const retention = 2 * time.Second
	st := newStore(t, Config{Retention: retention})
	ctx := Ctx(t)
	floor := MustLast(t, st, "u")
	first := MustAppend(t, st, []string{"u"}, MsgN(1))[0]
	if got, err := st.Read(ctx, "u", floor, 10); err != nil || len(got) != 1 {
		t.Fatalf("fresh Read = %v, %v", got, err)
	}
	time.Sleep(retention + 300*time.Millisecond)
	// The stream expired as a whole: no appends for Retention.
	if last := MustLast(t, st, "u"); last == first {
		t.Fatalf("Last = %s after the stream expired; want a new floor", last)
	} else if c, _ := queue.CompareOffsets(first, last); c != -1 {
		t.Fatalf("floor %s after expiry precedes the old entry %s", last, first)
	}
	for _, off := range []string{floor, first} {
		if _, err := st.Read(ctx, "u", off, 10); !errors.Is(err, queue.ErrOffsetExpired) {
			t.Fatalf("Read(%s) after retention = %v, want queue.ErrOffsetExpired", off, err)
		}
	}
	// A new stream is not mistaken for the continuation of the old one.
	second := MustAppend(t, st, []string{"u"}, MsgN(2))[0]
	if _, err := st.Read(ctx, "u", first, 10); !errors.Is(err, queue.ErrOffsetExpired) {
		t.Fatalf("Read(old offset) after the stream was recreated = %v, want queue.ErrOffsetExpired", err)
	}
	// Age trimming while the stream is in use: first entries age out, the
	// ones within retention stay readable.
	mid := MustAppend(t, st, []string{"u"}, MsgN(3))[0]
	time.Sleep(retention / 2)
	third := MustAppend(t, st, []string{"u"}, MsgN(4))[0]
	time.Sleep(retention/2 + 200*time.Millisecond)
	MustAppend(t, st, []string{"u"}, MsgN(5))
	if _, err := st.Read(ctx, "u", second, 10); !errors.Is(err, queue.ErrOffsetExpired) {
		t.Fatalf("Read(%s) older than retention = %v", second, err)
	}
	if _, err := st.Read(ctx, "u", mid, 10); !errors.Is(err, queue.ErrOffsetExpired) {
		t.Fatalf("Read(%s) older than retention = %v", mid, err)
	}
	got, err := st.Read(ctx, "u", third, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Read(%s) within retention = %v, %v", third, IDs(got), err)
	}
}

func testLive(t *testing.T, newStore Factory) {
	st := newStore(t, Config{})
	ctx := Ctx(t)
	a, b, other := NewCollector(), NewCollector(), NewCollector()
	cancelA, err := st.Subscribe(ctx, "u", a.Fn)
	if err != nil {
		t.Fatal(err)
	}
	cancelB, err := st.Subscribe(ctx, "u", b.Fn)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelB()
	cancelO, err := st.Subscribe(ctx, "other", other.Fn)
	if err != nil {
		t.Fatal(err)
	}
	defer cancelO()
	var want []string
	for i := range 3 {
		want = append(want, MustAppend(t, st, []string{"u"}, MsgN(i))[0])
	}
	for _, c := range []*Collector{a, b} {
		if got := IDs(c.WaitN(t, 3)); !slices.Equal(got, want) {
			t.Fatalf("live ids %v, want %v", got, want)
		}
	}
	cancelA()
	cancelA() // idempotent
	want = append(want, MustAppend(t, st, []string{"u"}, MsgN(3))[0])
	oid := MustAppend(t, st, []string{"other"}, MsgN(9))[0]
	if got := IDs(b.WaitN(t, 4)); !slices.Equal(got, want) {
		t.Fatalf("live ids after a cancel %v, want %v", got, want)
	}
	if got := IDs(other.WaitN(t, 1)); !slices.Equal(got, []string{oid}) {
		t.Fatalf("other user got %v", got)
	}
	// Let a stray delivery show up before checking nothing came.
	time.Sleep(100 * time.Millisecond)
	if msgs, errs := a.Snapshot(); len(msgs) != 3 || len(errs) != 0 {
		t.Fatalf("cancelled subscriber got %d messages, errors %v", len(msgs), errs)
	}
	if msgs, _ := other.Snapshot(); len(msgs) != 1 {
		t.Fatalf("other user got %d messages", len(msgs))
	}
	if _, err := st.Subscribe(ctx, "", a.Fn); !errors.Is(err, queue.ErrInvalidArgument) {
		t.Fatalf("Subscribe of an empty user: %v", err)
	}
}

// testLiveMatchesRead: each live delivery is the stored entry, same ID and
// content, in stream order, even with concurrent appenders.
func testLiveMatchesRead(t *testing.T, newStore Factory) {
	st := newStore(t, Config{MaxBytes: 1 << 30}) // 40 × the 70 KB sample
	ctx := Ctx(t)
	floor := MustLast(t, st, "u")
	c := NewCollector()
	cancel, err := st.Subscribe(ctx, "u", c.Fn)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	const writers, each = 4, 50
	done := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				m := Sample[(w+i)%len(Sample)]
				if _, err := st.Append(ctx, []string{"u", "v" + strconv.Itoa(w)}, m); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	live := c.WaitN(t, writers*each)
	stored, err := ReadAll(t, st, "u", floor)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != len(stored) {
		t.Fatalf("live %d, stored %d", len(live), len(stored))
	}
	for i := range live {
		if !SameMessage(live[i], stored[i]) {
			t.Fatalf("live[%d] = %s, stored %s", i, live[i].ID, stored[i].ID)
		}
	}
}

func testSessions(t *testing.T, newStore Factory) {
	st := newStore(t, Config{})
	ctx := Ctx(t)
	s := queue.Session{PID: "p1", SID: "s1", User: "alice", Namespace: "/chat", Rooms: []string{"a", "b"},
		Data: json.RawMessage(`{"k":[1,2]}`), Offset: "1700000000000-3"}
	if err := st.SaveSession(ctx, s, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := st.LoadSession(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("LoadSession = %+v, want %+v", got, s)
	}
	// Loading does not consume it; saving replaces it.
	s.Offset = "1700000000001-0"
	if err := st.SaveSession(ctx, s, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := st.LoadSession(ctx, "p1"); err != nil || got.Offset != s.Offset {
		t.Fatalf("after replace: %+v, %v", got, err)
	}
	if err := st.DeleteSession(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadSession(ctx, "p1"); !errors.Is(err, queue.ErrSessionNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := st.LoadSession(ctx, "nope"); !errors.Is(err, queue.ErrSessionNotFound) {
		t.Fatalf("unknown pid: %v", err)
	}
	// TTL.
	if err := st.SaveSession(ctx, queue.Session{PID: "short", User: "u"}, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadSession(ctx, "short"); err != nil {
		t.Fatalf("before its TTL: %v", err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := st.LoadSession(ctx, "short"); !errors.Is(err, queue.ErrSessionNotFound) {
		t.Fatalf("after its TTL: %v", err)
	}
	for _, bad := range []struct {
		s   queue.Session
		ttl time.Duration
	}{{queue.Session{}, time.Minute}, {queue.Session{PID: "x"}, 0}} {
		if err := st.SaveSession(ctx, bad.s, bad.ttl); !errors.Is(err, queue.ErrInvalidArgument) {
			t.Errorf("SaveSession(%+v, %v) = %v", bad.s, bad.ttl, err)
		}
	}
}

func testMembers(t *testing.T, newStore Factory) {
	st := newStore(t, Config{MaxMembers: 3})
	ctx := Ctx(t)
	steps := []struct {
		op, room, user string
		wantErr        error
		want           []string // Members(room, 0) afterwards
	}{
		{"add", "r", "carol", nil, []string{"carol"}},
		{"add", "r", "alice", nil, []string{"alice", "carol"}},
		{"add", "r", "alice", nil, []string{"alice", "carol"}},
		{"add", "r", "bob", nil, []string{"alice", "bob", "carol"}},
		{"add", "r", "dave", queue.ErrRoomFull, []string{"alice", "bob", "carol"}},
		{"add", "r", "bob", nil, []string{"alice", "bob", "carol"}}, // a member may re-join a full room
		{"remove", "r", "bob", nil, []string{"alice", "carol"}},
		{"remove", "r", "bob", nil, []string{"alice", "carol"}},
		{"add", "r", "dave", nil, []string{"alice", "carol", "dave"}},
		{"add", "r2", "alice", nil, []string{"alice"}},
		{"add", "", "alice", queue.ErrInvalidArgument, nil},
	}
	for i, s := range steps {
		var err error
		if s.op == "add" {
			err = st.AddMember(ctx, s.room, s.user)
		} else {
			err = st.RemoveMember(ctx, s.room, s.user)
		}
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("step %d %s(%s, %s) = %v, want %v", i, s.op, s.room, s.user, err, s.wantErr)
		}
		if s.room == "" {
			continue
		}
		got, err := st.Members(ctx, s.room, 0)
		if err != nil || !slices.Equal(got, s.want) {
			t.Fatalf("step %d: Members(%s) = %v, %v; want %v", i, s.room, got, err, s.want)
		}
	}
	if got, err := st.Members(ctx, "r", 2); err != nil || !slices.Equal(got, []string{"alice", "carol"}) {
		t.Fatalf("Members(limit 2) = %v, %v", got, err)
	}
	if got, err := st.Members(ctx, "empty", 0); err != nil || len(got) != 0 {
		t.Fatalf("Members of an unknown room = %v, %v", got, err)
	}
}

func testMemberOf(t *testing.T, newStore Factory) {
	st := newStore(t, Config{MaxMembers: 2})
	ctx := Ctx(t)
	memberOf := func(step int, user string, want ...string) {
		t.Helper()
		got, err := st.MemberOf(ctx, user)
		if err != nil || got == nil || !slices.Equal(got, append([]string{}, want...)) {
			t.Fatalf("step %d: MemberOf(%s) = %#v, %v; want %v", step, user, got, err, want)
		}
	}
	memberOf(0, "alice")
	for _, room := range []string{"team:b", "team:a", "team:c"} {
		if err := st.AddMember(ctx, room, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddMember(ctx, "team:a", "alice"); err != nil { // idempotent
		t.Fatal(err)
	}
	memberOf(1, "alice", "team:a", "team:b", "team:c")
	if err := st.RemoveMember(ctx, "team:b", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveMember(ctx, "team:b", "alice"); err != nil {
		t.Fatal(err)
	}
	memberOf(2, "alice", "team:a", "team:c")
	// A full room refuses, and is not listed.
	if err := st.AddMember(ctx, "team:a", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := st.AddMember(ctx, "team:a", "carol"); !errors.Is(err, queue.ErrRoomFull) {
		t.Fatalf("AddMember to a full room = %v", err)
	}
	memberOf(3, "carol")
	memberOf(4, "bob", "team:a")
	if _, err := st.MemberOf(ctx, ""); !errors.Is(err, queue.ErrInvalidArgument) {
		t.Fatalf("MemberOf(\"\") = %v", err)
	}
}

func testClose(t *testing.T, newStore Factory) {
	st := newStore(t, Config{})
	ctx := Ctx(t)
	if err := st.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	c := NewCollector()
	if _, err := st.Subscribe(ctx, "u", c.Fn); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, errs := c.Snapshot()
	if len(errs) != 1 || !errors.Is(errs[0], queue.ErrClosed) {
		t.Fatalf("subscriber errors after Close = %v, want one queue.ErrClosed", errs)
	}
	checks := map[string]error{}
	_, checks["Append"] = st.Append(ctx, []string{"u"}, Sample[0])
	_, checks["Read"] = st.Read(ctx, "u", "1-0", 1)
	_, checks["Subscribe"] = st.Subscribe(ctx, "u", c.Fn)
	checks["Ready"] = st.Ready(ctx)
	_, checks["MemberOf"] = st.MemberOf(ctx, "u")
	for name, err := range checks {
		if !errors.Is(err, queue.ErrClosed) {
			t.Errorf("%s after Close = %v, want queue.ErrClosed", name, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
