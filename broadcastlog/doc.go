// Package broadcastlog is the broadcast log: every non-volatile broadcast of
// a namespace is appended once (never once per member) to the namespace's
// log, which gives it a position, and every node delivers the logged
// broadcasts to its local sockets by tailing the log, in log order. A
// recovering client is sent what it missed in its rooms by reading the log
// after the position its offset carries (see socketio.Recovery.Log).
//
// Positions are stream entry IDs ("<ms>-<seq>"), ordered as Redis orders
// them; Memory generates them the same way. The Log implementations are
// Memory (one process) and redislog.Log (Redis Streams, one stream per
// namespace).
//
// Implementations are safe for concurrent use. A Tail calls its callback
// from one goroutine, in log order.
package broadcastlog
