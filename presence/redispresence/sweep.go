package redispresence

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/roomcast/roomcast/presence"
)

func (s *Store) loop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(s.ctx, 4*s.cfg.SweepInterval)
			if err := s.sweepDead(ctx); err != nil && s.ctx.Err() == nil {
				s.log.Warn("presence: sweep failed", "err", err)
			}
			cancel()
		}
	}
}

// sweepDead sweeps every node with entries that holds no lease, and
// re-registers this node if its entries are gone.
func (s *Store) sweepDead(ctx context.Context) error {
	member, err := s.rdb.SIsMember(ctx, s.nodesKey(), s.cfg.Node).Result()
	if err != nil {
		return unavailable(err)
	}
	if !member {
		if err := s.rdb.SAdd(ctx, s.nodesKey(), s.cfg.Node).Err(); err != nil {
			return unavailable(err)
		}
		if s.cfg.OnLost != nil {
			s.cfg.OnLost()
		}
	}
	if s.cfg.Live == nil {
		return nil
	}
	live, err := s.cfg.Live(ctx)
	if err != nil {
		return err
	}
	nodes, err := s.rdb.SMembers(ctx, s.nodesKey()).Result()
	if err != nil {
		return unavailable(err)
	}
	for _, n := range nodes {
		if n == s.cfg.Node || slices.Contains(live, n) {
			continue
		}
		if _, err := s.Sweep(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// Sweep removes the entries of node, a node that holds no lease, if no
// other node is sweeping it: it leaves its sockets' rooms (leave and
// vacated events), ends its sockets (disconnect events, reason
// presence.ReasonNodeLost) and appends the events its outboxes still held.
// A sweep that stops halfway is resumed by the next one, which appends
// each event once. It returns the events, which the listener is told of.
func (s *Store) Sweep(ctx context.Context, node string) ([]presence.Event, error) {
	lock := s.p + ":sweep:{" + node + "}"
	ok, err := s.rdb.SetNX(ctx, lock, s.cfg.Node, 4*s.cfg.SweepInterval+30*time.Second).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	if !ok {
		return nil, nil // another node is at it
	}
	defer s.rdb.Del(context.WithoutCancel(ctx), lock)
	var all []presence.Event
	rooms, err := s.rdb.SMembers(ctx, s.nodeRooms(node)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	for _, t := range rooms {
		nsp, room, ok := untag(t)
		if !ok {
			continue
		}
		_, raw, err := roomResult(roomScript.Run(ctx, s.rdb, s.roomKeys(nsp, room), "sweep", node).Result())
		if err != nil {
			return all, err
		}
		ev, err := s.flush(ctx, nsp, room, "", raw)
		if err != nil {
			return all, err
		}
		all = append(all, ev...)
		if err := s.rdb.SRem(ctx, s.nodeRooms(node), t).Err(); err != nil {
			return all, unavailable(err)
		}
	}
	socks, err := s.rdb.HKeys(ctx, s.nodeSockets(node)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return all, unavailable(err)
	}
	for _, t := range socks {
		nsp, sid, ok := untag(t)
		if !ok {
			continue
		}
		ev, err := s.disconnect(ctx, nsp, sid, node, presence.ReasonNodeLost, true)
		if err != nil {
			return all, err
		}
		all = append(all, ev...)
	}
	if node != s.cfg.Node {
		if err := s.rdb.SRem(ctx, s.nodesKey(), node).Err(); err != nil {
			return all, unavailable(err)
		}
	}
	return all, nil
}
