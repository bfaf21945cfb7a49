package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logviewer/logviewer/transform"
)

// Pub/sub connection upkeep.
const (
	pingInterval = 5 * time.Second // a silent connection is pinged after this
	fillPage     = 256             // stream entries per XRANGE when reading history
)

// redisReader is one pub/sub connection of a stream node: on a standalone
// Redis a PSUBSCRIBE on the prefix that receives every record (batch
// notifications and rsyslog's records), on a Redis Cluster an SSUBSCRIBE
// to the batch shard channels of the slots one master serves. It hands
// every record to the fanout. When
// Redis drops the connection (a restart, or client-output-buffer-limit
// pubsub cutting off a reader that fell behind) go-redis reconnects and
// subscribes again; the reader notices the new subscription confirmation
// and fills what it missed from the streams before going on live, per
// channel after the last record it delivered (lastID). A cluster's reader
// is replaced when its master's slots change; the new one is handed those
// positions and catches up the same way (see clusterWatcher).
//
// Every field but those under mu belongs to the run goroutine.
type redisReader struct {
	sh       *redisShard
	src      *RedisSource
	client   redis.UniversalClient // where it subscribes
	pattern  string                // PSUBSCRIBE pattern, or
	channels []string              // the shard channels it SSUBSCRIBEs
	owns     func(channel string) bool
	// ownClient: client is the reader's own (a cluster master's), closed
	// with it.
	ownClient bool
	// lost, when set (a cluster's reader), is called when a session ends
	// on an error: the master may have failed over or lost slots.
	lost      func()
	echo      int // per-record messages still to skip after a notification
	scratch   []batchItem
	delivered []Record // the records of one batch notification, for deliverAll

	lastID  map[string]position // per channel: the last record delivered
	lastAny position            // the latest ID delivered on any channel
	// lastBucket (a cluster's reader) is per bucket the latest ID
	// delivered of its channels (or handed over, see handOver): each
	// bucket is an ID sequence of its own.
	lastBucket [clusterBuckets]position
	// slots (a cluster's reader) tells by slot those the master serves.
	slots    []bool
	startID  position // Redis time when the first PSUBSCRIBE was in place
	sawPlain bool     // records without an ID (rsyslog) came: those cannot be refilled

	mu    sync.Mutex
	floor position // the latest ID delivered (or the start), for deliveredFloor
	// bucketFloors (a cluster's reader) is floor per bucket, for
	// bucketFloor.
	bucketFloors [clusterBuckets]position
	ps           *redis.PubSub
	active       chan struct{} // closed while the subscription is in place
	closed       bool
	subErr       error // the connection's state, for Health
}

// newRedisReader returns the reader of a standalone shard: one PSUBSCRIBE
// for all channels.
func newRedisReader(sh *redisShard) *redisReader {
	return &redisReader{
		sh:      sh,
		src:     sh.src,
		client:  sh.client,
		pattern: sh.keys.pattern(),
		owns:    func(string) bool { return true },
		lastID:  make(map[string]position),
		active:  make(chan struct{}),
		// Degraded until the subscription is in place: records published
		// before it would not reach this node live.
		subErr: errors.New("pub/sub not subscribed yet"),
	}
}

// deliveredFloor returns the latest ID the reader delivered, or where it
// started when it delivered none; zero before it started.
func (rd *redisReader) deliveredFloor() position {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.floor
}

// bucketFloor returns the latest ID of a cluster bucket the reader
// delivered, or where it started when it delivered none of it; zero before
// it started. It means something for the buckets of the reader's slots
// only.
func (rd *redisReader) bucketFloor(bucket int) position {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.bucketFloors[bucket]
}

// bucketBase returns where a cluster reader stands in a bucket: after the
// last record of it delivered, or, when none was, where it started. The
// records of a bucket come in ID order (one sequence, one master), so
// everything of the bucket up to there was delivered; lastAny, the latest
// of any bucket, says nothing of the others.
func (rd *redisReader) bucketBase(bucket int) position {
	if p := rd.lastBucket[bucket]; !p.isZero() {
		return p
	}
	return rd.startID
}

// publishFloor makes what the run goroutine delivered so far visible to
// deliveredFloor and bucketFloor.
func (rd *redisReader) publishFloor() {
	f := rd.lastAny
	if f.less(rd.startID) {
		f = rd.startID
	}
	var bf [clusterBuckets]position
	if rd.slots != nil {
		for k := range bf {
			bf[k] = rd.bucketBase(k)
		}
	}
	rd.mu.Lock()
	rd.floor = f
	rd.bucketFloors = bf
	rd.mu.Unlock()
}

// setSubHealth records the state of the connection.
func (rd *redisReader) setSubHealth(err error) {
	rd.mu.Lock()
	rd.subErr = err
	rd.mu.Unlock()
}

// health returns the state of the connection.
func (rd *redisReader) health() error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.subErr
}

// activeChan returns a channel closed while the PSUBSCRIBE is in place.
func (rd *redisReader) activeChan() <-chan struct{} {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.active
}

func (rd *redisReader) setActive(on bool) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	select {
	case <-rd.active:
		if !on {
			rd.active = make(chan struct{})
		}
	default:
		if on {
			close(rd.active)
		}
	}
}

// subscribe opens a new pub/sub connection (replacing the old one).
func (rd *redisReader) subscribe(ctx context.Context) *redis.PubSub {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.ps != nil {
		rd.ps.Close()
	}
	if rd.closed {
		rd.ps = nil
		return nil
	}
	// An error here (Redis down) is seen again by Receive, which retries.
	if rd.channels != nil {
		// One SSUBSCRIBE per shard channel: those of several slots may not
		// share a command (go-redis would resubscribe to all of them in one
		// command; each session starts a new PubSub instead).
		rd.ps = rd.client.SSubscribe(ctx)
		for _, ch := range rd.channels {
			if err := rd.ps.SSubscribe(ctx, ch); err != nil {
				break // seen again by Receive
			}
		}
	} else {
		rd.ps = rd.client.PSubscribe(ctx, rd.pattern)
	}
	return rd.ps
}

// close ends the pub/sub connection, which makes run return.
func (rd *redisReader) close() {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.closed = true
	if rd.ps != nil {
		rd.ps.Close()
	}
	if rd.ownClient {
		rd.client.Close()
	}
}

// errReaderClosed ends run: the reader was closed.
var errReaderClosed = errors.New("reader closed")

// run keeps the subscription up until ctx ends, one session per connection
// (see session): when one ends it waits (backoff, reset by a session that
// got its subscription) and starts the next. It closes done when it
// returns.
func (rd *redisReader) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	var backoff time.Duration
	for {
		active, err := rd.session(ctx, backoff > 0)
		if ctx.Err() != nil || errors.Is(err, errReaderClosed) {
			return
		}
		rd.setActive(false)
		rd.setSubHealth(err)
		if rd.lost != nil {
			rd.lost()
		}
		if active {
			backoff = 0
		}
		if backoff == 0 { // a working connection lost, or the first attempt failed
			rd.sh.log.Warn("redis pub/sub connection lost; reconnecting", slog.String("error", err.Error()))
		}
		backoff = nextBackoff(backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// session is one connection's lifetime: subscribe on a new connection;
// once the subscription is confirmed, deliver what was published since the
// previous session from the streams (unless this is the first), then
// deliver live records until the connection fails, or stays silent after a
// ping. retry says an earlier session failed. It returns whether the
// subscription was in place, and why the session ended.
func (rd *redisReader) session(ctx context.Context, retry bool) (active bool, err error) {
	ps := rd.subscribe(ctx)
	if ps == nil {
		return false, errReaderClosed
	}
	defer ps.Close()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, pingInterval)
		switch {
		case err != nil && isTimeout(err) && !pinged:
			pinged = true
			if err := ps.Ping(ctx); err != nil {
				return active, fmt.Errorf("pub/sub ping: %w", err)
			}
			continue
		case err != nil && isTimeout(err):
			return active, errors.New("pub/sub connection silent after a ping")
		case err != nil:
			return active, fmt.Errorf("pub/sub receive: %w", err)
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			if !active && !rd.startID.isZero() {
				// A shard channel subscribed before the others: the gap
				// fill once they all are reads this record from the
				// streams, in order after the last one delivered.
				// Delivered now it would move the channel's position past
				// the records before it that the fill is still to deliver.
				continue
			}
			rd.handle(m.Channel, m.Payload)
		case *redis.Subscription:
			if m.Kind == "sunsubscribe" {
				// Redis drops a shard channel's subscribers when its slot
				// moves to another master (resharding, failover): the next
				// session, or the reader of the slot's new master, fills
				// what this one no longer gets.
				return active, fmt.Errorf("shard channel %s unsubscribed by Redis: its slot moved", m.Channel)
			}
			if m.Kind != "psubscribe" && m.Kind != "ssubscribe" || m.Count < len(rd.channels) {
				continue // not yet subscribed to every shard channel
			}
			rd.echo = 0 // a new connection: what it gets starts afresh
			if rd.startID.isZero() {
				rd.startID = rd.redisNow(ctx)
				rd.publishFloor()
			} else if err := rd.fillGap(ctx); err != nil {
				return false, fmt.Errorf("gap fill: %w", err)
			} else if retry {
				rd.sh.log.Info("redis pub/sub connection back; gap filled from the streams")
			}
			active = true
			rd.setSubHealth(nil)
			rd.setActive(true)
		}
	}
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// redisNow returns Redis's clock as a stream ID, a second early (this
// host's clock when Redis does not answer).
func (rd *redisReader) redisNow(ctx context.Context) position {
	t, err := rd.client.Time(ctx).Result()
	if err != nil {
		t = time.Now()
	}
	return position{ms: uint64(max(t.UnixMilli()-1000, 1))}
}

// handle turns one pub/sub message into records and delivers them: a batch
// notification of our ingest, or a record another publisher (rsyslog) put
// on a channel.
func (rd *redisReader) handle(pubChannel, payload string) {
	if rd.sh.keys.isNotify(pubChannel) {
		rd.handleBatch(payload)
		return
	}
	if rd.echo > 0 {
		rd.echo-- // the per-record copy of a record the batch brought
		return
	}
	if len(pubChannel) < len(rd.sh.keys.prefix) {
		return
	}
	channel := pubChannel[len(rd.sh.keys.prefix):]
	rec := payloadRecord(channel, payload)
	if rec.ID == "" {
		rd.sawPlain = true
	} else if sid, ok := parseStreamID(rec.ID); ok && !rd.advance(channel, sid) {
		return // already delivered by a gap fill
	}
	rd.src.stats.add(channel, time.Now())
	rd.src.fan.deliver(rec)
	if rec.ID != "" {
		rd.publishFloor()
	}
}

// advance records that the record sid of channel is delivered; it returns
// false when it (or a later one) was already.
func (rd *redisReader) advance(channel string, sid position) bool {
	last, seen := rd.lastID[channel]
	if seen && !last.less(sid) {
		return false
	}
	if !seen && len(rd.lastID) >= maxChannelCache {
		rd.forgetOldestPositions(maxChannelCache / 8)
	}
	rd.lastID[channel] = sid
	if rd.lastAny.less(sid) {
		rd.lastAny = sid
	}
	if rd.slots != nil {
		if k := bucketOf(channel); rd.lastBucket[k].less(sid) {
			rd.lastBucket[k] = sid
		}
	}
	return true
}

// handleBatch delivers the records of a batch notification, each once, in
// ID order (publish order) across its entries.
func (rd *redisReader) handleBatch(payload string) {
	echo, entries, err := parseBatch(payload)
	if err != nil {
		rd.sh.log.Warn("redis batch notification dropped", slog.String("error", err.Error()))
		return
	}
	rd.echo = echo
	recs := rd.scratch[:0]
	for i := range entries {
		e := &entries[i]
		err := eachBlobRecord(e.blob, func(off uint64, gelf string) {
			recs = append(recs, batchItem{id: e.id.add(off), channel: e.channel, gelf: gelf})
		})
		if err != nil {
			rd.sh.log.Warn("redis batch entry cut short", slog.String("channel", e.channel),
				slog.String("id", e.id.String()), slog.String("error", err.Error()))
		}
	}
	if len(entries) > 1 {
		slices.SortFunc(recs, func(a, b batchItem) int { return a.id.compare(b.id) })
	}
	now := time.Now()
	out := rd.delivered[:0]
	for i := range recs {
		it := &recs[i]
		if !rd.advance(it.channel, it.id) {
			continue
		}
		rd.src.stats.add(it.channel, now)
		out = append(out, batchRecord(it.channel, it.id, it.gelf))
	}
	rd.src.fan.deliverAll(out)
	clear(recs) // drop the references into the payload
	rd.scratch = recs[:0]
	clear(out)
	rd.delivered = out[:0]
	rd.publishFloor()
}

// batchItem is one record of a batch notification before delivery.
type batchItem struct {
	id      position
	channel string
	gelf    string
}

// payloadRecord turns a pub/sub payload of channel into a record: ours
// carry their event ID, others (rsyslog) get none.
func payloadRecord(channel, payload string) Record {
	id, rest, ok := splitEventID(payload)
	if !ok {
		return Record{Channel: channel, JSON: plainJSON(channel, payload)}
	}
	js, idStr := publishedJSON(channel, id, rest)
	return Record{Channel: channel, ID: idStr, JSON: js}
}

// publishedJSON builds the record JSON of a payload our ingest published,
// {"_event_id":"<id>",<rest>, with "_channel" added after the ID; it returns
// the ID as a string of its own (not pinning the payload in memory).
func publishedJSON(channel, id, rest string) ([]byte, string) {
	return appendPublishedJSON(make([]byte, 0, len(rest)+len(id)+len(channel)+len(`{"_event_id":"","_channel":"",`)), channel, id, rest), strings.Clone(id)
}

// appendPublishedJSON appends the record publishedJSON makes to js.
func appendPublishedJSON(js []byte, channel, id, rest string) []byte {
	js = append(js, `{"_event_id":"`...)
	js = append(js, id...)
	js = append(js, `","_channel":`...)
	js = transform.AppendJSONString(js, channel)
	if rest == "" {
		js = append(js, '}')
	} else {
		js = append(js, ',')
		js = append(js, rest...)
	}
	return js
}

// splitEventID splits a payload published by our ingest,
// {"_event_id":"<ms>-<seq>",<rest>, into the ID and the members after it
// (empty for {"_event_id":"<id>"}). ok is false for any other payload. Our
// own payloads are trusted to be JSON; they are not validated.
func splitEventID(payload string) (id, rest string, ok bool) {
	const head = `{"_event_id":"`
	if len(payload) < len(head) || payload[:len(head)] != head {
		return "", "", false
	}
	dash := false
	for i := len(head); i < len(payload); i++ {
		switch c := payload[i]; {
		case c >= '0' && c <= '9':
		case c == '-' && !dash && i > len(head):
			dash = true
		case c == '"' && dash && payload[i-1] != '-' && i+1 < len(payload):
			switch payload[i+1] {
			case ',':
				return payload[len(head):i], payload[i+2:], true
			case '}':
				return payload[len(head):i], "", true
			}
			return "", "", false
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// plainJSON is the record of a payload that did not come from our ingest:
// rsyslog's GELF (often with a trailing newline) gets "_event_id":"" and
// "_channel" added. A payload that is not a JSON object (another template)
// is kept, not dropped: it becomes the short_message of a minimal object, so
// a viewer still shows the line.
func plainJSON(channel, payload string) []byte {
	end := len(payload)
	for end > 0 {
		switch payload[end-1] {
		case '\n', '\r', ' ', '\t', 0:
			end--
			continue
		}
		break
	}
	p := []byte(payload[:end])
	if isJSONObject(p) && json.Valid(p) {
		return AnnotateJSON(make([]byte, 0, len(p)+len(channel)+32), "", channel, p)
	}
	js := make([]byte, 0, len(p)+len(channel)+64)
	js = append(js, `{"_event_id":"","_channel":`...)
	js = transform.AppendJSONString(js, channel)
	js = append(js, `,"short_message":`...)
	js = transform.AppendJSONString(js, payload[:end])
	return append(js, '}')
}

// forgetOldestPositions drops the n oldest per-channel positions, so that
// a sender naming ever new channels cannot grow lastID without bound. It
// loses nothing: a shard's (a cluster bucket's) records come in ID order,
// so each forgotten position is at most the reader's position in its
// sequence, which is where fillGap takes a channel it has no position for
// up again. It runs once per n new channels past the bound.
func (rd *redisReader) forgetOldestPositions(n int) {
	type pos struct {
		channel string
		at      position
	}
	all := make([]pos, 0, len(rd.lastID))
	for ch, p := range rd.lastID {
		all = append(all, pos{ch, p})
	}
	slices.SortFunc(all, func(a, b pos) int { return a.at.compare(b.at) })
	for _, p := range all[:min(n, len(all))] {
		delete(rd.lastID, p.channel)
	}
}
