package engineio

import (
	"bytes"
	"net"
	"testing"
)

// countingConn records each Write call.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func TestCorkBatchesWritesInOrder(t *testing.T) {
	t.Parallel()
	under := &countingConn{}
	c := &corkConn{Conn: under}
	_, _ = c.Write([]byte("a")) // not corked: written through
	c.Cork()
	_, _ = c.Write([]byte("b"))
	_, _ = c.Write([]byte("c"))
	if len(under.writes) != 1 {
		t.Fatalf("corked writes reached the connection: %q", under.writes)
	}
	if err := c.Uncork(); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 2 || !bytes.Equal(under.writes[1], []byte("bc")) {
		t.Fatalf("writes = %q, want [a bc]", under.writes)
	}
	// Past maxCorked the held bytes go out first, then the big write.
	c.Cork()
	_, _ = c.Write([]byte("d"))
	big := bytes.Repeat([]byte("x"), maxCorked)
	_, _ = c.Write(big)
	if len(under.writes) != 4 || string(under.writes[2]) != "d" || len(under.writes[3]) != maxCorked {
		t.Fatalf("overflow writes = %d calls", len(under.writes))
	}
	_ = c.Uncork()
	if len(under.writes) != 4 {
		t.Fatal("Uncork wrote an empty buffer")
	}
}
