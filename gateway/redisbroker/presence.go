package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/duplexws/duplex/gateway"
	"github.com/redis/go-redis/v9"
)

// The broker's gateway.PresenceStore and gateway.ControlBus (issue 16),
// so that presence, join/leave and the server API's commands work across
// the nodes on one Redis:
//
//	duplex:{C}:members    hash: client → the Member as JSON, one field per
//	                      subscription of channel C, on any node
//	duplex:presence:chans set of the channels that may have members
//	duplex:node:N         "1" while node N is live, with a PresenceTTL
//	                      expiry each node renews every third of it
//	duplex:node:N:members set of node N's members, with their channels
//	duplex:presence:nodes set of the nodes that may have members
//	duplex:reap:N         taken (SET NX) by the node that reaps dead node N
//	duplex:control        PUB/SUB channel of control messages, to all nodes
//
// A member belongs to its node: members of a node whose key expired are
// neither listed nor counted. So when a node dies, its members leave the
// lists within PresenceTTL, and a node's renewal costs Redis one round
// trip however many clients it holds. Every node looks for dead nodes on
// its renewals (ReapDead); the one that takes a dead node's reap key
// deletes its members and announces their leaves. A node that finds its
// key gone when it renews (Redis was out of reach longer than
// PresenceTTL, or lost its data) writes its members again.
//
// The members hash shares its channel's hash tag, so on a cluster it lives
// on the channel's shard. Control messages use plain PUB/SUB, which a
// cluster carries to every shard; like any PUB/SUB message, one sent while
// a node is disconnected from Redis is lost to that node.

var (
	_ gateway.PresenceStore = (*Broker)(nil)
	_ gateway.ControlBus    = (*Broker)(nil)
)

func (b *Broker) membersKey(channel string) string  { return b.prefix + "{" + channel + "}:members" }
func (b *Broker) presenceChannelsKey() string       { return b.prefix + "presence:chans" }
func (b *Broker) nodeKey(node string) string        { return b.prefix + "node:" + node }
func (b *Broker) nodeMembersKey(node string) string { return b.prefix + "node:" + node + ":members" }
func (b *Broker) presenceNodesKey() string          { return b.prefix + "presence:nodes" }
func (b *Broker) reapKey(node string) string        { return b.prefix + "reap:" + node }

// indexEntry is a member's entry in its node's set: the same member and
// channel always make the same bytes, so RemoveMember can SREM it.
func indexEntry(channel string, m gateway.Member) string {
	b, _ := json.Marshal(gateway.ChannelMember{Channel: channel, Member: m})
	return string(b)
}
func (b *Broker) controlKey() string { return b.prefix + "control" }

// AddMember implements gateway.PresenceStore.
func (b *Broker) AddMember(ctx context.Context, channel string, m gateway.Member) error {
	v, _ := json.Marshal(m)
	// One round trip (go-redis splits a pipeline by shard on a cluster);
	// HSET goes first, so a channel in the set may be empty, never the
	// other way round for long (see forgetEmpty).
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, b.membersKey(channel), m.Client, v)
		p.SAdd(ctx, b.presenceChannelsKey(), channel)
		p.SAdd(ctx, b.nodeMembersKey(m.Node), indexEntry(channel, m))
		return nil
	})
	return err
}

// RemoveMember implements gateway.PresenceStore. The channel stays in the
// set of channels until ChannelCounts finds it empty.
func (b *Broker) RemoveMember(ctx context.Context, channel string, m gateway.Member) error {
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, b.membersKey(channel), m.Client)
		p.SRem(ctx, b.nodeMembersKey(m.Node), indexEntry(channel, m))
		return nil
	})
	return err
}

// Members implements gateway.PresenceStore.
func (b *Broker) Members(ctx context.Context, channel string) ([]gateway.Member, error) {
	all, err := b.rdb.HGetAll(ctx, b.membersKey(channel)).Result()
	if err != nil {
		return nil, err
	}
	byChan, err := b.liveMembers(ctx, map[string]map[string]string{channel: all})
	if err != nil {
		return nil, err
	}
	return byChan[channel], nil
}

// ChannelCounts implements gateway.PresenceStore. It reads every channel
// of the set, so it costs Redis in proportion to the subscriptions of all
// nodes: it serves GET /api/channels, not a hot path.
func (b *Broker) ChannelCounts(ctx context.Context) (map[string]int, error) {
	names, err := b.rdb.SMembers(ctx, b.presenceChannelsKey()).Result()
	if err != nil {
		return nil, err
	}
	cmds := make([]*redis.MapStringStringCmd, len(names))
	_, err = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ch := range names {
			cmds[i] = p.HGetAll(ctx, b.membersKey(ch))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	hashes := make(map[string]map[string]string, len(names))
	var empty []string
	for i, ch := range names {
		if h := cmds[i].Val(); len(h) > 0 {
			hashes[ch] = h
		} else {
			empty = append(empty, ch)
		}
	}
	b.forgetEmpty(ctx, empty)
	byChan, err := b.liveMembers(ctx, hashes)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(byChan))
	for ch, ms := range byChan {
		if len(ms) > 0 {
			out[ch] = len(ms)
		}
	}
	return out, nil
}

// forgetEmpty takes channels whose members hash is gone out of the set.
// A member added meanwhile (its HSET after our read, its SADD before our
// SREM) would be lost from the set: the channels are checked again after
// the SREM, and put back if they have members.
func (b *Broker) forgetEmpty(ctx context.Context, names []string) {
	if len(names) == 0 {
		return
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	if b.rdb.SRem(ctx, b.presenceChannelsKey(), args...).Err() != nil {
		return
	}
	for _, ch := range names {
		if n, err := b.rdb.Exists(ctx, b.membersKey(ch)).Result(); err == nil && n > 0 {
			b.rdb.SAdd(ctx, b.presenceChannelsKey(), ch)
		}
	}
}

// liveMembers parses the members hashes of channels and keeps the members
// of live nodes; those of dead nodes are left for ReapDead.
func (b *Broker) liveMembers(ctx context.Context, hashes map[string]map[string]string) (map[string][]gateway.Member, error) {
	nodes := make(map[string]bool)
	parsed := make(map[string][]gateway.Member, len(hashes))
	for ch, h := range hashes {
		for client, v := range h {
			var m gateway.Member
			if json.Unmarshal([]byte(v), &m) != nil {
				m = gateway.Member{}
			}
			m.Client = client
			nodes[m.Node] = false
			parsed[ch] = append(parsed[ch], m)
		}
	}
	if len(nodes) > 0 {
		names := make([]string, 0, len(nodes))
		cmds := make([]*redis.IntCmd, 0, len(nodes))
		_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for n := range nodes {
				names = append(names, n)
				cmds = append(cmds, p.Exists(ctx, b.nodeKey(n)))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, n := range names {
			nodes[n] = cmds[i].Val() > 0
		}
	}
	out := make(map[string][]gateway.Member, len(parsed))
	for ch, ms := range parsed {
		for _, m := range ms {
			if nodes[m.Node] && m.Node != "" {
				out[ch] = append(out[ch], m)
			}
		}
	}
	return out, nil
}

// KeepNode implements gateway.PresenceStore with one SET … GET (and the
// node's entry in the set of nodes, in the same round trip).
func (b *Broker) KeepNode(ctx context.Context, node string, ttl time.Duration) (bool, error) {
	var set *redis.StatusCmd
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		set = p.SetArgs(ctx, b.nodeKey(node), "1", redis.SetArgs{TTL: ttl, Get: true})
		p.SAdd(ctx, b.presenceNodesKey(), node)
		return nil
	})
	if err == nil || errors.Is(err, redis.Nil) {
		err = set.Err()
	}
	switch {
	case errors.Is(err, redis.Nil):
		// Back after it was taken for dead: it may be reaped again.
		b.rdb.Del(ctx, b.reapKey(node))
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// DropNode implements gateway.PresenceStore: the node's members are no
// longer listed, and are deleted when next found.
func (b *Broker) DropNode(ctx context.Context, node string) error {
	return b.rdb.Del(ctx, b.nodeKey(node)).Err()
}

// ReapDead implements gateway.PresenceStore. A dead node is reaped by the
// node that takes its reap key; the others skip it.
func (b *Broker) ReapDead(ctx context.Context) ([]gateway.ChannelMember, error) {
	nodes, err := b.rdb.SMembers(ctx, b.presenceNodesKey()).Result()
	if err != nil || len(nodes) == 0 {
		return nil, err
	}
	exists := make([]*redis.IntCmd, len(nodes))
	if _, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range nodes {
			exists[i] = p.Exists(ctx, b.nodeKey(n))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var out []gateway.ChannelMember
	for i, n := range nodes {
		if exists[i].Val() > 0 {
			continue
		}
		won, err := b.rdb.SetNX(ctx, b.reapKey(n), "1", time.Minute).Result()
		if err != nil {
			return out, err
		}
		if !won {
			continue
		}
		entries, err := b.rdb.SMembers(ctx, b.nodeMembersKey(n)).Result()
		if err != nil {
			return out, err
		}
		var reaped []gateway.ChannelMember
		_, err = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range entries {
				var cm gateway.ChannelMember
				if json.Unmarshal([]byte(e), &cm) != nil || cm.Client == "" {
					continue
				}
				p.HDel(ctx, b.membersKey(cm.Channel), cm.Client)
				reaped = append(reaped, cm)
			}
			p.Del(ctx, b.nodeMembersKey(n))
			p.SRem(ctx, b.presenceNodesKey(), n)
			return nil
		})
		if err != nil {
			return out, err
		}
		out = append(out, reaped...)
	}
	return out, nil
}

// PublishControl implements gateway.ControlBus.
func (b *Broker) PublishControl(ctx context.Context, msg []byte) error {
	return b.rdb.Publish(ctx, b.controlKey(), msg).Err()
}

// SubscribeControl implements gateway.ControlBus. The subscription is a
// connection of its own, which go-redis reconnects after a failure.
func (b *Broker) SubscribeControl(deliver func([]byte)) (stop func()) {
	ps := b.rdb.Subscribe(b.ctx, b.controlKey())
	// Wait, briefly, for Redis to confirm, so that a command sent right
	// after the gateway starts reaches it; if Redis is down, Channel
	// subscribes once it is back.
	ctx, cancel := context.WithTimeout(b.ctx, time.Second)
	ps.Receive(ctx)
	cancel()
	ch := ps.Channel()
	quit := make(chan struct{})
	done := make(chan struct{})
	// Close ends the subscription with the broker.
	unhook := context.AfterFunc(b.ctx, func() { ps.Close() })
	go func() {
		defer close(done)
		for {
			select {
			case m, ok := <-ch:
				if !ok {
					return
				}
				deliver([]byte(m.Payload))
			case <-quit:
				return
			case <-b.ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			unhook()
			ps.Close()
			<-done
		})
	}
}
