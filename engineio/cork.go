package engineio

import (
	"net"
	"sync"
)

// maxCorked bounds what a corked connection holds before writing through.
const maxCorked = 64 << 10

// corkConn batches the websocket frames of one queue flush into a single
// write: the websocket library flushes after every message, so without it a
// connection with n queued packets costs n system calls. Cork and Uncork are
// called by the connection's run loop only; Write may also be called by the
// websocket library's reader (pongs, close frames), which it serializes with
// its own write lock.
type corkConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool
	buf    []byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked && len(c.buf)+len(p) <= maxCorked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// Cork starts holding writes.
func (c *corkConn) Cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// Uncork writes what was held in one call and stops holding.
func (c *corkConn) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 16<<10 {
		c.buf = nil // do not keep a burst's buffer on an idle connection
	} else {
		c.buf = c.buf[:0]
	}
	return err
}
