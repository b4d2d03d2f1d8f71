package redisadapter

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/roomcast/roomcast/adapter"
)

// Asynchronous broadcasts. A client's read loop that waited for every
// PUBLISH round trip could have one broadcast in flight at a time; instead
// BroadcastAsync delivers locally at once and hands the publish to the node's
// publish pipeline: one goroutine that sends what is queued as one Redis
// pipeline, in queue order (so broadcasts from one node reach the others in
// the order they were made), and then reports each outcome.

const (
	// publishQueue bounds the publishes waiting for Redis; past it a publish
	// fails at once with ErrUnavailable rather than blocking a client.
	publishQueue = 8192
	// publishBatch bounds one pipeline.
	publishBatch = 256
)

type pendingPublish struct {
	channel string
	payload []byte
	done    func(error)
}

func (b *broker) startPublisher() {
	b.pubs = make(chan pendingPublish, publishQueue)
	b.wg.Add(1)
	go b.publishLoop()
}

// publishAsync queues a publish; done reports its outcome.
func (b *broker) publishAsync(channel string, payload []byte, done func(error)) {
	b.pubMu.RLock()
	defer b.pubMu.RUnlock()
	if b.pubClosed {
		done(adapter.ErrClosed)
		return
	}
	select {
	case b.pubs <- pendingPublish{channel: channel, payload: payload, done: done}:
	default:
		b.countError(opPublish)
		done(fmt.Errorf("%w: %d publishes already waiting for redis", adapter.ErrUnavailable, publishQueue))
	}
}

// stopPublisher refuses new publishes; the loop fails what is left queued.
func (b *broker) stopPublisher() {
	b.pubMu.Lock()
	b.pubClosed = true
	b.pubMu.Unlock()
}

func (b *broker) publishLoop() {
	defer b.wg.Done()
	batch := make([]pendingPublish, 0, publishBatch)
	for {
		select {
		case p := <-b.pubs:
			batch = append(batch[:0], p)
		fill:
			for len(batch) < publishBatch {
				select {
				case p := <-b.pubs:
					batch = append(batch, p)
				default:
					break fill
				}
			}
			b.flushPublishes(batch)
			clear(batch)
		case <-b.ctx.Done():
			for {
				select {
				case p := <-b.pubs:
					p.done(adapter.ErrClosed)
				default:
					return
				}
			}
		}
	}
}

func (b *broker) flushPublishes(batch []pendingPublish) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	if len(batch) == 1 {
		batch[0].done(b.publish(ctx, batch[0].channel, batch[0].payload))
		return
	}
	start := time.Now()
	pipe := b.client.Pipeline()
	cmds := make([]*redis.IntCmd, len(batch))
	for i, p := range batch {
		if b.sharded {
			cmds[i] = pipe.SPublish(ctx, p.channel, p.payload)
		} else {
			cmds[i] = pipe.Publish(ctx, p.channel, p.payload)
		}
	}
	_, err := pipe.Exec(ctx)
	b.observe(opPublish, start, err)
	for i, p := range batch {
		if cerr := cmds[i].Err(); cerr != nil {
			p.done(fmt.Errorf("%w: publish to %q: %v", adapter.ErrUnavailable, p.channel, cerr))
			continue
		}
		p.done(nil)
	}
}
