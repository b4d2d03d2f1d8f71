package parser

import (
	"bytes"
	"fmt"
	"testing"
)

// message is one Engine.IO message fed to a Decoder.
type message struct {
	data   []byte
	binary bool
}

func text(s string) message      { return message{data: []byte(s)} }
func binary(b ...byte) message   { return message{data: b, binary: true} }
func binaryStr(s string) message { return message{data: []byte(s), binary: true} }

func ph(n int) string { return fmt.Sprintf(`{"_placeholder":true,"num":%d}`, n) }

// decodeAll feeds msgs to d in order and returns the packets it completed;
// it stops at the first error.
func decodeAll(tb testing.TB, d *Decoder, msgs []message) ([]*Packet, error) {
	tb.Helper()
	var out []*Packet
	for i, m := range msgs {
		p, err := d.Decode(m.data, m.binary)
		if err != nil {
			return out, fmt.Errorf("message %d: %w", i, err)
		}
		if p != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// encodeMessages turns p into the messages that carry it.
func encodeMessages(p *Packet) []message {
	msgs := []message{{data: AppendText(nil, p)}}
	for _, a := range p.Attachments {
		msgs = append(msgs, message{data: a, binary: true})
	}
	return msgs
}

// samePacket reports how got differs from want, or "" when they are equal.
// Nil and empty Attachments are equal; Data must match byte for byte.
func samePacket(got, want *Packet) string {
	switch {
	case got == nil || want == nil:
		if got != want {
			return fmt.Sprintf("got %v, want %v", got, want)
		}
	case got.Type != want.Type:
		return fmt.Sprintf("Type %v, want %v", got.Type, want.Type)
	case got.Namespace != want.Namespace:
		return fmt.Sprintf("Namespace %q, want %q", got.Namespace, want.Namespace)
	case got.ID != want.ID:
		return fmt.Sprintf("ID %d, want %d", got.ID, want.ID)
	case (got.Data == nil) != (want.Data == nil) || !bytes.Equal(got.Data, want.Data):
		return fmt.Sprintf("Data %q, want %q", got.Data, want.Data)
	case len(got.Attachments) != len(want.Attachments):
		return fmt.Sprintf("%d attachments, want %d", len(got.Attachments), len(want.Attachments))
	}
	if got != nil {
		for i := range got.Attachments {
			if !bytes.Equal(got.Attachments[i], want.Attachments[i]) {
				return fmt.Sprintf("attachment %d = %x, want %x", i, got.Attachments[i], want.Attachments[i])
			}
		}
	}
	return ""
}
