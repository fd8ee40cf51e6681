package gateway

import (
	"context"
	"time"
)

// Presence, join/leave events and the server API's commands (issue 16)
// need the nodes of a cluster to share two things besides channels: who is
// subscribed where, and a way to tell every node something. A broker that
// can shares them by also implementing PresenceStore and ControlBus. These
// are optional interfaces, so that Broker stays as it is: with a broker
// that lacks them, presence lists, /api/channels, join/leave events and
// /api/disconnect, /api/subscribe and /api/unsubscribe see and act on the
// clients of this node only (docs/protocol.md, "Several nodes"). The memory
// broker has both, for the gateways that share it in one process.

// Member is one client's subscription to a channel, as presence lists it.
type Member struct {
	// Client identifies the connection, unique across nodes: the node's
	// ID, a dot, and the connection's number on that node.
	Client string `json:"client"`

	// User is who the connection authenticated as (Identity.User).
	User string `json:"user"`

	// Node is the ID of the gateway that holds the connection.
	Node string `json:"node"`
}

// PresenceStore keeps the subscriptions of every node, so that any node
// can list a channel's members and count the subscribers of each channel.
//
// Members expire with their node: each gateway calls KeepNode every third
// of the time-to-live it passes (Options.PresenceTTL), and the members of a
// node that stopped doing so (it died, or lost the broker) are neither
// listed nor counted once that time has passed since its last call. So a
// dead node's clients leave the lists within PresenceTTL; ReapDead then
// hands them to one live gateway, which announces their leaves. A gateway
// that shuts down calls DropNode.
type PresenceStore interface {
	// AddMember records m as subscribed to channel.
	AddMember(ctx context.Context, channel string, m Member) error

	// RemoveMember forgets m's subscription to channel.
	RemoveMember(ctx context.Context, channel string, m Member) error

	// Members returns the members of channel on live nodes, in no
	// particular order.
	Members(ctx context.Context, channel string) ([]Member, error)

	// ChannelCounts returns every channel with members on live nodes,
	// and how many.
	ChannelCounts(ctx context.Context) (map[string]int, error)

	// KeepNode marks node live for ttl from now. renewed is false when
	// node was not live before the call (its first call, or its ttl
	// passed meanwhile, and its members may be gone): the gateway then
	// adds its members again.
	KeepNode(ctx context.Context, node string, ttl time.Duration) (renewed bool, err error)

	// DropNode takes node for dead at once: its members are no longer
	// listed, and any left (their removal failed) may be returned by
	// ReapDead or simply deleted.
	DropNode(ctx context.Context, node string) error

	// ReapDead removes the members of nodes whose ttl passed and returns
	// them, each to one caller only, so that the gateway announces the
	// leave of each client of a dead node once. Each gateway calls it on
	// its keep-alive ticks.
	ReapDead(ctx context.Context) ([]ChannelMember, error)
}

// ChannelMember is a member with its channel.
type ChannelMember struct {
	Channel string `json:"channel"`
	Member
}

// ControlBus carries control messages, opaque bytes, to every gateway on
// the broker, the sender included: join/leave events and the commands of
// the server API (disconnect a user, subscribe or unsubscribe one).
//
// Delivery is at most once: a node that is not connected to the broker
// when a message is sent misses it.
type ControlBus interface {
	// PublishControl sends msg to every subscriber of the bus.
	PublishControl(ctx context.Context, msg []byte) error

	// SubscribeControl calls deliver with every control message, in the
	// order of each sender, until stop is called. Like Subscribe's,
	// deliver must not block, and no call starts after stop returns.
	SubscribeControl(deliver func(msg []byte)) (stop func())
}
