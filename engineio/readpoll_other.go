//go:build !linux

package engineio

import "errors"

// Where there is no read poller, every websocket read waits on a
// goroutine of its own.

type readPoller struct{}

type pollSlot struct{}

func newReadPoller() *readPoller { return nil }

func (r *readPoller) stop() {}

func (r *readPoller) arm(p *readPark) error { return errors.New("engineio: no read poller") }

func (r *readPoller) forget(p *readPark) {}
