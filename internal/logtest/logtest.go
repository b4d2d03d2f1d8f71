// Package logtest is the contract test of broadcastlog.Log, run against
// every implementation.
package logtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/broadcastlog"
)

// Factory returns a fresh, empty Log with retention, closed by t.Cleanup.
type Factory func(t testing.TB, retention time.Duration) broadcastlog.Log

func entry(i int, rooms ...string) broadcastlog.Entry {
	return broadcastlog.Entry{Rooms: rooms, Data: json.RawMessage(fmt.Sprintf(`["m",%d]`, i))}
}

// Run runs the contract tests.
func Run(t *testing.T, newLog Factory) {
	ctx := context.Background()
	t.Run("AppendReadInOrder", func(t *testing.T) {
		l := newLog(t, time.Minute)
		start, err := l.Last(ctx, "/")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := range 5 {
			e := entry(i, "a")
			if i == 3 {
				e.Attachments = [][]byte{{1, 2, 3}}
				e.Except = []string{"x"}
			}
			id, err := l.Append(ctx, "/", e)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		got, err := l.Read(ctx, "/", start, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 5 {
			t.Fatalf("read %d entries, want 5", len(got))
		}
		for i, e := range got {
			if e.ID != ids[i] || string(e.Data) != fmt.Sprintf(`["m",%d]`, i) || len(e.Rooms) != 1 || e.Rooms[0] != "a" {
				t.Fatalf("entry %d = %+v", i, e)
			}
		}
		if len(got[3].Attachments) != 1 || string(got[3].Attachments[0]) != "\x01\x02\x03" || got[3].Except[0] != "x" {
			t.Fatalf("entry 3 = %+v", got[3])
		}
		got, err = l.Read(ctx, "/", ids[2], 1)
		if err != nil || len(got) != 1 || got[0].ID != ids[3] {
			t.Fatalf("read after ids[2], limit 1 = %v, %v", got, err)
		}
		if last, _ := l.Last(ctx, "/"); last != ids[4] {
			t.Fatalf("Last = %s, want %s", last, ids[4])
		}
		if got, err := l.Read(ctx, "/", "", 2); err != nil || len(got) != 2 || got[0].ID != ids[0] {
			t.Fatalf("read from the oldest = %v, %v", got, err)
		}
		if got, err := l.Read(ctx, "/other", start, 0); len(got) != 0 {
			t.Fatalf("other namespace read %v, %v", got, err)
		}
	})
	t.Run("BeyondEndIsExpired", func(t *testing.T) {
		l := newLog(t, time.Minute)
		if _, err := l.Append(ctx, "/", entry(1)); err != nil {
			t.Fatal(err)
		}
		future := broadcastlog.Position{Ms: uint64(time.Now().Add(time.Hour).UnixMilli())}.String()
		if _, err := l.Read(ctx, "/", future, 0); !errors.Is(err, broadcastlog.ErrExpired) {
			t.Fatalf("read beyond the end: %v, want ErrExpired", err)
		}
		if _, err := l.Read(ctx, "/", "nope", 0); !errors.Is(err, broadcastlog.ErrInvalidPosition) {
			t.Fatalf("read bad position: %v", err)
		}
	})
	t.Run("RetentionExpires", func(t *testing.T) {
		l := newLog(t, 50*time.Millisecond)
		start, _ := l.Last(ctx, "/")
		if _, err := l.Append(ctx, "/", entry(1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(120 * time.Millisecond)
		// The next append trims what is older than the retention.
		for i := range 200 {
			if _, err := l.Append(ctx, "/", entry(i)); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := l.Read(ctx, "/", start, 0); !errors.Is(err, broadcastlog.ErrExpired) {
			t.Fatalf("read after a trimmed entry = %d entries, %v; want ErrExpired", len(got), err)
		}
		if got, err := l.Read(ctx, "/", "", 0); err != nil || len(got) == 0 || string(got[0].Data) == `["m",1]` {
			t.Fatalf("read from the oldest after a trim = %d entries, %v", len(got), err)
		}
	})
	t.Run("Tail", func(t *testing.T) {
		l := newLog(t, time.Minute)
		start, _ := l.Last(ctx, "/")
		first, _ := l.Append(ctx, "/", entry(0))
		got := make(chan broadcastlog.Entry, 100)
		cancel, err := l.Tail(ctx, "/", start, func(es []broadcastlog.Entry, err error) {
			for _, e := range es {
				got <- e
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		var ids = []string{first}
		for i := 1; i < 50; i++ {
			id, _ := l.Append(ctx, "/", entry(i))
			ids = append(ids, id)
		}
		for i := range 50 {
			select {
			case e := <-got:
				if e.ID != ids[i] {
					t.Fatalf("tail entry %d = %s, want %s", i, e.ID, ids[i])
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("tail: entry %d missing", i)
			}
		}
	})
}
