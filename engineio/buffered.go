package engineio

import "context"

// Buffered returns the bytes queued and not yet taken by the transport. A
// socket.io "volatile" packet is dropped when it is not zero: the client is
// not ready for more.
func (c *Conn) Buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queueBytes
}

// WaitBelow blocks until at most mark bytes are queued (the transport took
// the rest), ctx ends (ctx.Err()) or the session closes (ErrClosed). A
// producer with much to send (a replay) calls it between batches so that
// it never makes its client a slow consumer. Any number of goroutines may
// wait; waiting costs the senders nothing.
func (c *Conn) WaitBelow(ctx context.Context, mark int) error {
	for {
		c.mu.Lock()
		if c.state != stateOpen {
			c.mu.Unlock()
			return ErrClosed
		}
		if c.queueBytes <= mark {
			c.mu.Unlock()
			return nil
		}
		if c.drained == nil {
			c.drained = make(chan struct{})
		}
		drained := c.drained
		c.mu.Unlock()
		select {
		case <-drained:
		case <-c.closing:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// signalDrainedLocked wakes the WaitBelow callers after the queue shrank.
func (c *Conn) signalDrainedLocked() {
	if c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
}
