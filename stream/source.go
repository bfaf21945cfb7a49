package stream

import (
	"context"

	"github.com/logviewer/logviewer/publish"
)

// Source is what the server needs of the bus: subscriptions, the channel
// list and health. It never publishes; publish.Memory and publish.Redis
// (of any role) are Sources.
type Source interface {
	// Subscribe starts a subscription to the channels matching pattern.
	Subscribe(ctx context.Context, pattern string, opts publish.SubscribeOptions) (publish.Subscription, error)
	// Channels lists the known channels, sorted by name.
	Channels(ctx context.Context) ([]publish.ChannelInfo, error)
	// Health returns nil when the bus works fully, else why it is degraded.
	Health(ctx context.Context) error
}
