package publish

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Echo modes of the writer (--redis-publish-records).
const (
	echoNone   = 0 // no per-record PUBLISH
	echoPlain  = 1 // each record's GELF as ingest made it (--gelf-compat: the five fields)
	echoWithID = 2 // each record's GELF with "_event_id" first
)

// txAttempts bounds the optimistic transactions tried for one flush when
// other ingest nodes keep moving the ID sequence in between.
const txAttempts = 16

// channelBlob is one channel's part of a flush being written.
type channelBlob struct {
	channel string
	bucket  int // in a cluster: the channel's bucket (see bucketOf)
	first   int // position in the flush (in a cluster: in its bucket's part of it) of the channel's first record
	n       int
	lastOff int    // offset of its last record from its first
	data    []byte // the batch blob (see redis_batch.go)

	// read before the transaction
	count int64    // records written to the channel's stream so far
	last  position // ID of the last record written there
	marks string   // trim marks, "<count> <entry ID>" joined by ',', oldest first
	bad   bool     // the stream key holds another type: records dropped
}

// flushState is what writeFlush reads of the shard before it writes.
type flushState struct {
	now      position // Redis's clock
	seq      position // the last ID handed out (zero when fresh)
	fresh    bool     // no sequence yet: this flush starts the epoch
	hasEpoch bool
}

// writeFlush writes the channels of one flush (total records) in one
// optimistic transaction: WATCH the shard's (a cluster bucket's) ID
// sequence, read it and each channel's counters, then MULTI: per channel
// one XADD with an explicit ID, its counters and trims, the registry, the
// one notification, and the per-record PUBLISHes asked for; EXEC. When
// another ingest node moved the sequence in between, EXEC does nothing and
// the flush is tried again.
//
// No Lua touches the records: Redis's Lua hashes every byte of every
// string it is handed, which cost more than all the rest of a flush.
// Records get IDs from one sequence per shard (per cluster bucket), one
// number per record in publish order (see redis_batch.go). It returns how
// many records were dropped because a channel's key holds another type.
func (w *redisWriter) writeFlush(ctx context.Context, blobs []channelBlob, total int, echo []echoRecord) (dropped int, err error) {
	keys := w.keys
	var nowMS uint64
	// On a standalone Redis the WATCH goes in the same round trip as the
	// reads (two round trips a flush, not three: what a flush costs Redis
	// beyond its records is mostly its round trips). A cluster client
	// needs the key to find the node.
	var watchKeys []string
	if keys.cluster {
		watchKeys = []string{keys.state(blobs[0].channel)}
	}
	for attempt := 0; attempt < txAttempts; attempt++ {
		err = w.client.Watch(ctx, func(tx *redis.Tx) error {
			st, err := w.readFlushState(ctx, tx, blobs, !keys.cluster)
			if err != nil {
				return err
			}
			base := st.seq.add(1)
			if st.fresh || st.now.ms > st.seq.ms {
				base = position{ms: max(st.now.ms, st.seq.ms)}
			}
			for i := range blobs {
				// A stream ahead of the sequence (it was lost or set back):
				// start after the stream's last record.
				if b := &blobs[i]; !b.bad && !b.last.less(base) {
					base = b.last.add(1)
				}
			}
			last := base.add(uint64(total - 1))
			payload := w.notification(blobs, base, len(echo))
			dropped = 0
			w.renewing = w.renewing[:0]
			nowMS = st.now.ms
			var cmds []redis.Cmder
			cmds, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				var first position
				for i := range blobs {
					b := &blobs[i]
					if b.bad {
						dropped += b.n
						continue
					}
					id := base.add(uint64(b.first))
					if first.isZero() {
						first = id
					}
					w.addEntry(ctx, p, b, id, st.now.ms)
				}
				if keys.cluster {
					p.SPublish(ctx, keys.notify(blobs[0].channel), payload)
				} else {
					p.Publish(ctx, keys.notify(""), payload)
				}
				p.HSet(ctx, keys.state(blobs[0].channel), "ms", strconv.FormatUint(last.ms, 10), "seq", strconv.FormatUint(last.seq, 10))
				if !st.hasEpoch && !first.isZero() {
					p.HSet(ctx, keys.state(blobs[0].channel), "epoch", first.String())
				}
				w.echoRecords(ctx, p, blobs, base, echo)
				return nil
			})
			if err != nil && keys.cluster {
				err = slotMoving(cmds, err)
			}
			if err != nil && !errors.Is(err, redis.TxFailedErr) && !keys.cluster {
				// EXEC may not have run: the connection goes back to the
				// pool, so it must not keep the key watched.
				_ = tx.Unwatch(ctx).Err()
			}
			return err
		}, watchKeys...)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		w.isStream = nil // a key may have changed type: ask again
		return 0, fmt.Errorf("write batch: %w", err)
	}
	w.registeredAt(w.renewing, nowMS)
	return dropped, nil
}

// readFlushState reads, in one round trip within the WATCH, the shard's
// clock and ID sequence and each channel's counters and marks, and the key
// type of the channels not known to hold a stream yet. With watch, the
// round trip starts with the WATCH of the ID sequence.
func (w *redisWriter) readFlushState(ctx context.Context, tx *redis.Tx, blobs []channelBlob, watch bool) (flushState, error) {
	keys := w.keys
	var (
		timeCmd  *redis.TimeCmd
		stateCmd *redis.SliceCmd
		metaCmds = make([]*redis.SliceCmd, len(blobs))
		typeCmds = make([]*redis.StatusCmd, len(blobs))
	)
	_, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
		if watch {
			p.Do(ctx, "watch", keys.state(blobs[0].channel))
		}
		timeCmd = p.Time(ctx)
		stateCmd = p.HMGet(ctx, keys.state(blobs[0].channel), "ms", "seq", "epoch")
		for i := range blobs {
			ch := blobs[i].channel
			metaCmds[i] = p.HMGet(ctx, keys.meta(ch), "n", "last", "marks")
			if !w.isStream[ch] {
				typeCmds[i] = p.Type(ctx, keys.stream(ch))
			}
		}
		return nil
	})
	if err != nil {
		if watch {
			_ = tx.Unwatch(ctx).Err()
		}
		return flushState{}, fmt.Errorf("read id state: %w", err)
	}
	var st flushState
	t := timeCmd.Val()
	st.now = position{ms: uint64(max(t.UnixMilli(), 0))}
	vals := stateCmd.Val()
	ms, ok1 := vals[0].(string)
	seq, ok2 := vals[1].(string)
	_, st.hasEpoch = vals[2].(string)
	st.seq, st.fresh = parseStreamID(ms + "-" + seq)
	st.fresh = !st.fresh || !ok1 || !ok2
	for i := range blobs {
		b := &blobs[i]
		b.count, b.last, b.bad = 0, position{}, false
		mv := metaCmds[i].Val()
		if s, ok := mv[0].(string); ok {
			b.count, _ = strconv.ParseInt(s, 10, 64)
		}
		if s, ok := mv[1].(string); ok {
			b.last, _ = parseStreamID(s)
		}
		b.marks, _ = mv[2].(string)
		if typeCmds[i] != nil {
			typ := typeCmds[i].Val()
			b.bad = typ != "stream" && typ != "none"
			if typ == "stream" {
				w.knowStream(b.channel)
			}
		}
	}
	return st, nil
}

// addEntry queues one channel's entry with its counters, marks and trims.
// History is bounded in records, not entries: the channel's counter counts
// the records written, a mark (counter and entry ID) every step records
// tells which entries hold only records older than the last History, and
// XTRIM MINID drops them. A channel keeps between History and History +
// step + one flush of records. Counter, last ID and marks are one hash.
func (w *redisWriter) addEntry(ctx context.Context, p redis.Pipeliner, b *channelBlob, id position, nowMS uint64) {
	keys := w.keys
	idStr := id.String()
	p.XAdd(ctx, &redis.XAddArgs{Stream: keys.stream(b.channel), ID: idStr, Values: []any{"n", b.n, "b", b.data}})
	cum := b.count + int64(b.n)
	marks := b.marks
	step := int64(w.step)
	if cum/step != b.count/step {
		m := strconv.FormatInt(cum, 10) + " " + idStr
		if marks == "" {
			marks = m
		} else {
			marks += "," + m
		}
	}
	var trimTo position
	for marks != "" {
		head, rest, _ := strings.Cut(marks, ",")
		c, mid, ok := strings.Cut(head, " ")
		n, err := strconv.ParseInt(c, 10, 64)
		sid, okID := parseStreamID(mid)
		if ok && err == nil && okID && n > cum-int64(w.history) {
			break
		}
		if ok && err == nil && okID {
			trimTo = sid.add(1)
		}
		marks = rest // passed, or not ours: dropped
	}
	if !trimTo.isZero() {
		p.XTrimMinID(ctx, keys.stream(b.channel), trimTo.String())
	}
	p.HSet(ctx, keys.meta(b.channel), "n", cum, "last", id.add(uint64(b.lastOff)).String(), "marks", marks)
	if !keys.cluster && w.registerDue(b.channel, nowMS) { // in a cluster the registry is in another slot: see send
		p.ZAdd(ctx, keys.registry(), redis.Z{Score: float64(nowMS), Member: b.channel})
		w.renewing = append(w.renewing, b.channel)
	}
}

// registryEvery is how often a channel's time in the registry is renewed.
const registryEvery = 1000 // ms

// maxChannelCache bounds the writer's per-channel caches; past it they
// start afresh.
const maxChannelCache = 1 << 16

// registerDue reports whether the channel's registry entry is due: not
// renewed by this writer within registryEvery.
func (w *redisWriter) registerDue(channel string, nowMS uint64) bool {
	last, ok := w.registered[channel]
	return !ok || nowMS-last >= registryEvery || nowMS < last
}

// registeredAt counts the channels renewed at nowMS, once the command that
// renewed them succeeded: a failed transaction (another ingest node moved
// the ID sequence) renews them in its retry, so that no channel misses the
// registry, which tails and resumes of globs read.
func (w *redisWriter) registeredAt(channels []string, nowMS uint64) {
	if w.registered == nil || len(w.registered)+len(channels) > maxChannelCache {
		w.registered = make(map[string]uint64)
	}
	for _, ch := range channels {
		w.registered[ch] = nowMS
	}
}

// knowStream remembers that a channel's key holds a stream, so later
// flushes do not ask its type.
func (w *redisWriter) knowStream(channel string) {
	if w.isStream == nil || len(w.isStream) >= maxChannelCache {
		w.isStream = make(map[string]bool)
	}
	w.isStream[channel] = true
}

// notification builds the batch notification of a flush (see
// redis_batch.go) whose first record gets the ID base.
func (w *redisWriter) notification(blobs []channelBlob, base position, echo int) []byte {
	size := len(batchMagic) + 16
	for i := range blobs {
		size += len(blobs[i].channel) + len(blobs[i].data) + 64
	}
	out := make([]byte, 0, size)
	out = append(out, batchMagic...)
	out = strconv.AppendInt(out, int64(echo), 10)
	out = append(out, '\n')
	for i := range blobs {
		b := &blobs[i]
		if b.bad {
			continue
		}
		out = append(out, b.channel...)
		out = append(out, '\n')
		id := base.add(uint64(b.first))
		out = strconv.AppendUint(out, id.ms, 10)
		out = append(out, '-')
		out = strconv.AppendUint(out, id.seq, 10)
		out = append(out, '\n')
		out = strconv.AppendInt(out, int64(b.n), 10)
		out = append(out, '\n')
		out = strconv.AppendInt(out, int64(len(b.data)), 10)
		out = append(out, '\n')
		out = append(out, b.data...)
	}
	return out
}

// echoRecord is one record of a flush for --redis-publish-records.
type echoRecord struct {
	gelf []byte
	blob int // its channel's index in the flush's blobs
	off  int // its offset from the channel's first record
}

// echoRecords queues the per-record PUBLISHes of --redis-publish-records,
// in publish order.
func (w *redisWriter) echoRecords(ctx context.Context, p redis.Pipeliner, blobs []channelBlob, base position, echo []echoRecord) {
	for _, e := range echo {
		b := &blobs[e.blob]
		if b.bad {
			continue
		}
		gelf, msg := e.gelf, e.gelf
		if w.echo == echoWithID {
			id := base.add(uint64(b.first + e.off)).String()
			msg = make([]byte, 0, len(gelf)+len(id)+20)
			msg = append(msg, `{"_event_id":"`...)
			msg = append(msg, id...)
			msg = append(msg, '"')
			if !isEmptyObjectBody(gelf[1:]) {
				msg = append(msg, ',')
			}
			msg = append(msg, gelf[1:]...)
		}
		p.Publish(ctx, w.keys.pubsub(b.channel), msg)
	}
}
