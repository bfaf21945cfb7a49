// Package publish moves GELF records from ingest to stream subscribers: an
// in-memory hub (the embedded default) and a Redis bus for scale-out, both
// behind the Bus interface. It knows no HTTP.
package publish

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by a bus or subscription used after Close.
var ErrClosed = errors.New("publish: closed")

// Record is one published log record as subscribers see it.
type Record struct {
	Channel string
	ID      string // event ID; increases per channel
	// JSON is the GELF object with "_event_id" and "_channel" as its first
	// members, encoded once at publish time and shared read-only by every
	// subscriber that receives the record.
	JSON []byte
	// SSE, when set, is the record as one Server-Sent Event, built once for
	// every SSE client: "id: <ID>\ndata: <JSON>\n\n" with JSON on one line;
	// JSON is then a part of it. Buses that do not build it leave it nil.
	SSE []byte
}

// Size is the bytes a record holds: its event, or its JSON.
func (r *Record) Size() int {
	if r.SSE != nil {
		return len(r.SSE)
	}
	return len(r.JSON)
}

// EventKind tells what an Event carries.
type EventKind uint8

// Kinds of events a subscription delivers.
const (
	// EventRecord carries a Record.
	EventRecord EventKind = iota
	// EventDropped says Dropped records were lost because the subscriber fell
	// behind; it comes in place of them, before the next record.
	EventDropped
	// EventGap says the requested resume point (SubscribeOptions.Since) is
	// older than the history kept or from an earlier life of the history; the
	// records that follow start from the oldest one still kept.
	EventGap
)

// Event is one item delivered to a subscriber.
type Event struct {
	Kind    EventKind
	Record  Record // for EventRecord
	Dropped uint64 // for EventDropped
	// ByChannel splits Dropped by channel, for EventDropped: at most
	// MaxDropChannels channels, the rest under "".
	ByChannel map[string]uint64
	// Channels names the channels that lost records, for EventGap, sorted:
	// at most MaxDropChannels. Empty: any of the matched channels may have.
	Channels []string
}

// SubscribeOptions select where a subscription starts.
type SubscribeOptions struct {
	// Since resumes after this event ID: every later record of the matched
	// channels is delivered once, history first, then live. Empty: no resume.
	Since string
	// Tail backfills up to this many of the most recent records (across all
	// matched channels) before live ones, when Since is empty.
	Tail int
	// QueueSize bounds the events waiting for the subscriber; when it is full
	// the oldest are dropped and counted. Zero means DefaultQueueSize.
	QueueSize int
	// QueueBytes bounds the bytes of the records waiting for the subscriber
	// (their JSON plus a fixed overhead each) in the same way. Zero or less:
	// no byte bound of its own; the bus's total budget still applies.
	QueueBytes int64
}

// MaxDropChannels bounds the channels an EventDropped names one by one.
const MaxDropChannels = 32

// DefaultQueueSize is the per-subscriber queue bound used when none is given.
const DefaultQueueSize = 4096

// Subscription is a live feed of records from the channels matching a pattern.
type Subscription interface {
	// Next waits until at least one event is ready, then appends all ready
	// events (up to cap(buf)-len(buf), at least one) to buf and returns it.
	// It returns ctx.Err() when ctx ends and ErrClosed after Close.
	Next(ctx context.Context, buf []Event) ([]Event, error)
	// Close ends the subscription and releases its resources.
	Close() error
}

// ReadyNotifier is implemented by subscriptions that can say when Next
// would return without waiting, so that a subscriber need not keep a
// goroutine blocked in Next while nothing comes. The subscriptions of both
// buses implement it.
type ReadyNotifier interface {
	// NotifyReady arranges for ready to be called once, as soon as Next
	// would not wait: events are ready, or the subscription was closed or
	// its bus closed. It returns false, and ready is not called, when that
	// is so already. ready runs on the goroutine that made events ready (a
	// publisher's): it must be quick and must not call into the
	// subscription. One arrangement is kept at a time; a later call
	// replaces it.
	NotifyReady(ready func()) bool
	// StopNotify cancels the arrangement of NotifyReady: ready is not
	// called after StopNotify returns, unless it was called before.
	StopNotify()
}

// ChannelInfo describes one known channel.
type ChannelInfo struct {
	Name     string    `json:"name"`
	Count    uint64    `json:"count"`     // records published since this node started
	LastSeen time.Time `json:"last_seen"` // time of the latest record
	Rate     float64   `json:"rate"`      // records per second over the last few seconds
}

// Bus carries records from publishers to subscribers.
type Bus interface {
	// Publish assigns the record an event ID and hands it to every matching
	// subscriber. It never waits for subscribers. gelf is a JSON object; the
	// bus copies what it keeps, so the caller may reuse gelf afterwards.
	Publish(ctx context.Context, channel string, gelf []byte) error
	// Subscribe starts a subscription to the channels matching pattern, a
	// glob as Redis PSUBSCRIBE takes ("*", "web-*", "app?"), or several
	// joined by commas ("web-*,db-1").
	Subscribe(ctx context.Context, pattern string, opts SubscribeOptions) (Subscription, error)
	// Channels lists the known channels, sorted by name.
	Channels(ctx context.Context) ([]ChannelInfo, error)
	// Health returns nil when the bus works fully, else why it is degraded.
	Health(ctx context.Context) error
	// Close releases the bus; pending subscriptions end with ErrClosed.
	Close() error
}
