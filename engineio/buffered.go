package engineio

// Buffered returns the bytes queued and not yet taken by the transport. A
// socket.io "volatile" packet is dropped when it is not zero: the client is
// not ready for more.
func (c *Conn) Buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queueBytes
}
