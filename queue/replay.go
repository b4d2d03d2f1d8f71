package queue

import (
	"context"
	"sync"

	"github.com/roomcast/roomcast/queue/internal/core"
)

// maxReplayBuffer bounds the live messages Replay holds while it sends the
// backlog. When more arrive it drops them and reads the backlog again
// (they are in the stream), so memory stays bounded however fast the user
// receives messages.
const maxReplayBuffer = 4096

// Replay performs the gap-free handoff from a user's backlog to live
// delivery. It subscribes live first (buffering), reads the backlog after
// the offset after in pages of pageSize (DefaultPageSize when <= 0), sends
// each message, then the buffered live messages newer than the last one
// sent, and returns; from then on live messages are sent as they arrive
// until ctx ends or stop is called. The messages sent are exactly the
// stream after after, in order, each once.
//
// When the offset is too old Replay returns ErrOffsetExpired before sending
// anything. (If trimming overtakes a long replay in progress it returns
// ErrOffsetExpired after sending part of the backlog.) An error from send
// ends the replay: Replay returns it, or, in the live phase, passes it to
// onEnd.
//
// Until Replay returns, send is called from the caller's goroutine; after,
// from the Store's delivery goroutine, so it must not block (queue the
// message to the connection). onEnd, when not nil, is called once if live
// sending ends on its own: with send's error, or with an error wrapping
// ErrGap or ErrClosed from the Store. It is not called after stop or when
// ctx ends. stop may be called from send and onEnd.
func Replay(ctx context.Context, st Store, user, after string, pageSize int, send func(Message) error, onEnd func(error)) (stop func(), err error) {
	last, err := core.ParseID(after)
	if err != nil {
		return nil, err
	}
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	r := &replay{send: send, onEnd: onEnd, last: last}
	cancel, err := st.Subscribe(ctx, user, r.onLive)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	unwatch := context.AfterFunc(ctx, r.stop)
	r.mu.Lock()
	r.unwatch = unwatch
	r.mu.Unlock()

	replayed := 0
	defer func() { core.CountReplayed(st, replayed) }()
	fail := func(err error) (func(), error) {
		r.stop()
		return nil, err
	}

	cursor := after
	for {
		// The backlog, page by page.
		for {
			page, err := st.Read(ctx, user, cursor, pageSize)
			if err != nil {
				return fail(err)
			}
			for _, m := range page {
				if err := r.sendOrdered(m); err != nil {
					return fail(err)
				}
				replayed++
				cursor = m.ID
			}
			if len(page) < pageSize {
				break
			}
		}
		// The live messages that arrived meanwhile, until none are left.
		overflow := false
		for {
			r.mu.Lock()
			switch {
			case r.stopped:
				r.mu.Unlock()
				return fail(ErrStopped)
			case r.err != nil:
				err := r.err
				r.mu.Unlock()
				return fail(err)
			case r.overflow:
				r.overflow, r.buf = false, nil
				overflow = true
			case len(r.buf) == 0:
				r.live = true
			}
			buf := r.buf
			r.buf = nil
			live := r.live
			r.mu.Unlock()
			if live {
				return r.stop, nil
			}
			if overflow {
				break // read the backlog again from cursor
			}
			for _, m := range buf {
				sent, err := r.sendIfNew(m)
				if err != nil {
					return fail(err)
				}
				if sent {
					replayed++
					cursor = m.ID
				}
			}
		}
	}
}

type replay struct {
	send  func(Message) error
	onEnd func(error)

	mu       sync.Mutex
	cancel   func()
	unwatch  func() bool
	last     core.ID   // greatest ID sent
	buf      []Message // live messages held until the backlog is sent
	overflow bool      // buf overflowed and was dropped
	live     bool      // backlog done: live messages are sent directly
	stopped  bool
	err      error // the subscription ended during the backlog
}

// sendOrdered sends a backlog message and records its ID.
func (r *replay) sendOrdered(m Message) error {
	id, err := core.ParseID(m.ID)
	if err != nil {
		return err
	}
	r.mu.Lock()
	stopped := r.stopped
	r.mu.Unlock()
	if stopped {
		return ErrStopped
	}
	if err := r.send(m); err != nil {
		return err
	}
	r.mu.Lock()
	if r.last.Less(id) {
		r.last = id
	}
	r.mu.Unlock()
	return nil
}

// sendIfNew sends m unless an equal or later ID was sent already.
func (r *replay) sendIfNew(m Message) (bool, error) {
	id, err := core.ParseID(m.ID)
	if err != nil {
		return false, nil
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return false, ErrStopped
	}
	if !r.last.Less(id) {
		r.mu.Unlock()
		return false, nil
	}
	r.last = id
	r.mu.Unlock()
	return true, r.send(m)
}

// onLive is the subscription's callback. The Store serialises its calls.
func (r *replay) onLive(m Message, err error) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	if !r.live {
		switch {
		case err != nil:
			r.err = err
		case len(r.buf) >= maxReplayBuffer:
			r.overflow, r.buf = true, nil
		case !r.overflow:
			r.buf = append(r.buf, m)
		}
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	if err == nil {
		if _, err = r.sendIfNew(m); err == nil {
			return
		}
	}
	r.mu.Lock()
	done := r.stopped
	r.mu.Unlock()
	r.stop()
	if !done && r.onEnd != nil {
		r.onEnd(err)
	}
}

// stop ends the replay; it is idempotent.
func (r *replay) stop() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	cancel, unwatch := r.cancel, r.unwatch
	r.buf = nil
	r.mu.Unlock()
	if unwatch != nil {
		unwatch()
	}
	if cancel != nil {
		cancel()
	}
}
