package gateway

import (
	"fmt"

	"github.com/roomcast/roomcast/broadcastlog"
	"github.com/roomcast/roomcast/broadcastlog/redislog"
)

// openBroadcastLog opens the broadcast log that recovery replays room
// broadcasts from: in Redis Streams with --redis (one stream per
// namespace), else in memory. Entries are kept for the recovery window.
func (g *Gateway) openBroadcastLog() error {
	if g.rdb == nil {
		g.blog = broadcastlog.NewMemory(broadcastlog.MemoryConfig{Retention: g.cfg.RecoveryWindow})
		return nil
	}
	l, err := redislog.New(redislog.Config{Client: g.rdb, Prefix: g.cfg.RedisPrefix, Retention: g.cfg.RecoveryWindow, Linger: g.cfg.LogLinger})
	if err != nil {
		return fmt.Errorf("gateway: broadcast log: %w", err)
	}
	g.blog = l
	return nil
}
