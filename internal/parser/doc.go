// Package parser is the Socket.IO protocol v5 packet codec: the text encoding
// of packets, the reassembly of binary packets from their attachments, and the
// conversion between Go values and event arguments with binary placeholders.
//
// A Socket.IO packet travels as one Engine.IO message holding its text form
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
//
// followed, for BINARY_EVENT and BINARY_ACK, by one binary Engine.IO message
// per attachment. Every []byte in the arguments is replaced in the JSON by
// {"_placeholder":true,"num":N}, N being its index among the attachments.
//
// Decoded packets keep their payload as raw JSON (placeholders left in) so a
// gateway can relay or inspect a packet without decoding it into Go values;
// [EventName] reads the event name cheaply and [UnmarshalArgs] decodes the
// arguments when a handler needs them. [MarshalArgs] and [AppendText] build
// outgoing packets; a broadcast encodes its packet once and hands the same
// bytes to every socket.
//
// Validation follows socket.io-parser 4.2.7 (its Decoder and isPacketValid)
// with a few deliberate tightenings documented on [Decoder.Decode]; the tests
// replay vectors recorded from that package (testdata/gen_vectors.mjs).
// Reserved event names ("connect", "disconnect", ...) are accepted by the
// decoder and refused by the server with [Reserved], which must be given the
// unescaped name [EventName] returns: the wire form "\u0063onnect" is
// "connect". [AppendFrames] turns a packet into the Engine.IO frames that
// carry it.
//
// # Concurrency
//
// [AppendText], [MarshalArgs], [UnmarshalArgs] and [EventName] are pure
// functions, safe for concurrent use. A [Decoder] holds the state of one
// connection (the binary packet awaiting its attachments); it is owned by that
// connection's read loop and is not safe for concurrent use. A decoded
// [Packet] owns its memory: Decode copies what it keeps, so the caller may
// reuse the message buffers once Decode returns. Values returned by
// [UnmarshalArgs] alias the attachments they were given.
package parser
