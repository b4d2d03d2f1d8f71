package main

import (
	"bytes"
	"io"
	"testing"
)

// chunkReader returns its data in pieces of the given sizes (cycled), the
// way a websocket message arrives split across frames and reads.
type chunkReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		n = int(r.sizes[r.i%len(r.sizes)])%17 + 1
		r.i++
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

var fuzzSeeds = []string{
	realOpen, realConn, realOK, realErr, realDeliveryGateway, realDeliverySocketIO,
	realRefusedGateway, realRefusedSocketIO, "2", "3", "1", "41", "6",
	`4212["m",{"t":5,"seq":6}]`, `42["m",{"t":1.5e3,"seq":-1}]`, `42["m",{"a":{"b":["]","}"]},"t":1,"seq":2}]`,
}

// FuzzFrames feeds a message in split chunks through readMessage, then into
// every parser: none may panic, the reassembled message must equal the
// input, and a parsed delivery must be the same whichever way it was read.
func FuzzFrames(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), []byte{1, 3, 7})
		f.Add([]byte(s), []byte{})
	}
	ev := []byte(`"m"`)
	f.Fuzz(func(t *testing.T, msg, sizes []byte) {
		got, err := readMessage(&chunkReader{data: msg, sizes: sizes}, make([]byte, 0, 8), 1<<16)
		if len(msg) > 1<<16 {
			return
		}
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("readMessage = %q, %v; want %q", got, err, msg)
		}
		d1, ok1 := parseDelivery(got, ev)
		d2, ok2 := parseDelivery(msg, ev)
		if ok1 != ok2 || d1 != d2 {
			t.Fatalf("parseDelivery differs between chunked and whole reads")
		}
		a, ok := parseAck(got)
		if ok && !a.OK && a.Code == "" {
			t.Fatalf("error ack without a code: %q", got)
		}
		if kind, _ := parseConnectReply(got); kind == replyOK && !bytes.HasPrefix(got, []byte("40")) {
			t.Fatalf("CONNECT ok from %q", got)
		}
		_, _ = parseOpen(got)
		_ = isGone(got)
	})
}
