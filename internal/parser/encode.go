package parser

import "strconv"

// AppendText appends the Socket.IO text encoding of p, for example
//
//	51-/chat,12["ev",{"_placeholder":true,"num":0}]
//
// to dst and returns the extended buffer. BinaryEvent and BinaryAck get the
// "<n>-" prefix with n = len(p.Attachments); the attachments themselves are
// sent by the caller as the n binary messages that follow; n must be at least
// 1, since socket.io-parser 4.2.7 refuses "50-". The namespace is
// omitted when it is "/" or "", the id when it is negative (NoID). p.Data is
// copied verbatim and must be valid JSON of the kind the type requires.
//
// AppendText allocates only to grow dst; with a reused dst of sufficient
// capacity it does not allocate.
func AppendText(dst []byte, p *Packet) []byte {
	dst = strconv.AppendUint(dst, uint64(p.Type), 10)
	if p.Type.IsBinary() {
		dst = strconv.AppendInt(dst, int64(len(p.Attachments)), 10)
		dst = append(dst, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		dst = append(dst, p.Namespace...)
		dst = append(dst, ',')
	}
	if p.ID >= 0 {
		dst = strconv.AppendInt(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}
