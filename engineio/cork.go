package engineio

import (
	"net"
	"sync"
)

// maxCorked bounds what a corked connection holds before writing through.
const maxCorked = 64 << 10

// chunkSize is the size of the pooled buffers a websocket connection
// batches its writes in. An idle connection holds none: one is taken when
// frames are written and given back once they are.
const chunkSize = 4 << 10

var wsChunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

func getChunk() *[]byte { return wsChunkPool.Get().(*[]byte) }

func putChunk(b *[]byte) {
	if cap(*b) > maxCorked {
		return // a burst's buffer is not kept
	}
	*b = (*b)[:0]
	wsChunkPool.Put(b)
}

// corkConn is a websocket's view of its connection.
//
// Writes: it batches the frames of one queue flush into a single write
// (the websocket library flushes after every message, so without it a
// connection with n queued packets costs n system calls). Cork and Uncork
// are called by the connection's writer only; Write may also be called by
// the websocket library's reader (pongs, close frames), which it
// serializes with its own write lock.
//
// Reads go straight to the socket through the library's tiny bufio.Reader:
// a read buffer would be held while the connection waits for bytes, that
// is, all the time. A message costs two reads (its header, then its
// payload straight into the library's buffer); clients send little.
type corkConn struct {
	net.Conn
	park *readPark // parks the read between messages; nil: a goroutine waits in it

	mu     sync.Mutex
	corked bool
	out    *[]byte // held writes; nil when none
}

// Write implements io.Writer.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked && (c.out == nil || len(*c.out)+len(p) <= maxCorked) {
		if c.out == nil {
			c.out = getChunk()
		}
		*c.out = append(*c.out, p...)
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
	if c.out == nil {
		return nil
	}
	_, err := c.Conn.Write(*c.out)
	putChunk(c.out)
	c.out = nil
	return err
}
