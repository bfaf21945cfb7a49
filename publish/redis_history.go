package publish

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logviewer/logviewer/internal/glob"
)

// historyEntry is one record read from a stream for a backfill or a gap
// fill.
type historyEntry struct {
	id  position
	rec Record
}

// appendEntryRecords appends the records of one stream entry of channel
// that come after floor: a batch (fields n, b) of our ingest, or one
// record (field d) as rsyslog's drop-in writes it.
func appendEntryRecords(dst []historyEntry, channel string, msg redis.XMessage, floor position) []historyEntry {
	id, ok := parseStreamID(msg.ID)
	if !ok {
		return dst
	}
	if b, ok := msg.Values["b"].(string); ok {
		_ = eachBlobRecord(b, func(off uint64, gelf string) {
			rid := id.add(off)
			if floor.less(rid) {
				dst = append(dst, historyEntry{id: rid, rec: batchRecord(channel, rid, gelf)})
			}
		})
		return dst
	}
	if !floor.less(id) {
		return dst
	}
	d, _ := msg.Values["d"].(string)
	if eid, rest, ok := splitEventID(d); ok && eid == msg.ID {
		js, _ := publishedJSON(channel, msg.ID, rest)
		return append(dst, historyEntry{id: id, rec: Record{Channel: channel, ID: msg.ID, JSON: js}})
	}
	bs := []byte(d)
	return append(dst, historyEntry{id: id, rec: Record{
		Channel: channel,
		ID:      msg.ID,
		JSON:    AnnotateJSON(make([]byte, 0, len(bs)+len(channel)+48), msg.ID, channel, bs),
	}})
}

// sortEntries orders entries by ID across channels, as they were published.
func sortEntries(es []historyEntry) {
	slices.SortFunc(es, func(a, b historyEntry) int {
		switch {
		case a.id.less(b.id):
			return -1
		case b.id.less(a.id):
			return 1
		}
		return strings.Compare(a.rec.Channel, b.rec.Channel)
	})
}

// matchChannels lists the channels of shard sh a pattern (or a
// comma-separated list of them) names: its plain names hashed to sh, and
// the channels of sh's registry its globs match.
func (sh *redisShard) matchChannels(ctx context.Context, pattern string) ([]string, error) {
	var out, globs []string
	seen := map[string]bool{}
	for _, p := range glob.Split(pattern) {
		if glob.HasMeta(p) {
			globs = append(globs, p)
		} else if !seen[p] && sh.src.shardOf(p) == sh {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(globs) == 0 {
		return out, nil
	}
	all, err := sh.client.ZRange(ctx, sh.keys.registry(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("channel registry: %w", err)
	}
	for _, ch := range all {
		if seen[ch] {
			continue
		}
		for _, g := range globs {
			if glob.Match(g, ch) {
				seen[ch] = true
				out = append(out, ch)
				break
			}
		}
	}
	return out, nil
}

// history reads the backfill a subscription asks for from every shard, and
// returns the skip function that drops live records already in it (or not
// after the resume point). A resume ID is a plain event ID or a token of
// several sequences (see redis_resume.go); rp is it parsed, nil when there
// is none or when the resume starts from the oldest records kept (an ID
// from an earlier life of the history, or malformed).
func (r *RedisSource) history(ctx context.Context, pattern string, opts SubscribeOptions) ([]Event, func(Record) bool, *resumePoint, error) {
	var (
		entries []historyEntry
		gap     bool
		floor   = make(map[string]position)
	)
	resume := opts.Since != ""
	rp, validSince := parseResume(opts.Since)
	sinceOf := func(channel string) position { return rp.at(r.unitOf(channel)) }
	lost := resume && !validSince
	gap = lost
	for _, sh := range r.shards {
		channels, err := sh.matchChannels(ctx, pattern)
		if err != nil {
			return nil, nil, nil, sh.unreachable(err)
		}
		if len(channels) == 0 {
			continue
		}
		var got []historyEntry
		if resume {
			from, lostLife, g, err := sh.resumePoints(ctx, channels, sinceOf, !validSince)
			if err != nil {
				return nil, nil, nil, sh.unreachable(err)
			}
			gap = gap || g
			lost = lost || lostLife
			for ch, id := range from {
				floor[ch] = id
			}
			got, err = sh.readAfter(ctx, from)
			if err != nil {
				return nil, nil, nil, sh.unreachable(err)
			}
		} else if got, err = sh.readTail(ctx, channels, opts.Tail); err != nil {
			return nil, nil, nil, sh.unreachable(err)
		}
		entries = append(entries, got...)
	}
	sortEntries(entries)
	for _, e := range entries {
		if f := floor[e.rec.Channel]; f.less(e.id) {
			floor[e.rec.Channel] = e.id
		}
	}
	if !resume && len(entries) > opts.Tail {
		entries = entries[len(entries)-opts.Tail:]
	}
	backfill := make([]Event, 0, len(entries)+1)
	if gap {
		backfill = append(backfill, Event{Kind: EventGap})
	}
	for i := range entries {
		backfill = append(backfill, Event{Kind: EventRecord, Record: entries[i].rec})
	}
	// Channels without history yet: after the resume point, or all.
	def := func(string) position { return position{} }
	if resume && !lost {
		def = sinceOf
	}
	skip := func(rec Record) bool {
		id, ok := parseStreamID(rec.ID)
		if !ok {
			return false // no ID (rsyslog): never in a history
		}
		f, ok := floor[rec.Channel]
		if !ok {
			f = def(rec.Channel)
		}
		return !f.less(id)
	}
	if !resume || lost {
		return backfill, skip, nil, nil
	}
	return backfill, skip, &rp, nil
}

// resumePoints decides where each channel's history starts for a resume
// after sinceOf(channel): after it, or from the oldest entry kept when
// entries after it were trimmed (XINFO STREAM max-deleted-entry-id, Redis
// 7), or from the start when it is from an earlier life of the channel's ID
// sequence (before its epoch, or no sequence at all: Redis lost its data) or
// the resume ID is no stream ID (invalid). Channels without a stream are
// left out. lostLife says that some channel's sequence began after its
// resume point.
func (sh *redisShard) resumePoints(ctx context.Context, channels []string, sinceOf func(string) position, invalid bool) (from map[string]position, lostLife, gap bool, err error) {
	states, err := sh.streamStates(ctx, channels)
	if err != nil {
		return nil, false, false, err
	}
	lostLife = invalid
	from = make(map[string]position, len(channels))
	for i, ch := range channels {
		st := states[i]
		since := sinceOf(ch)
		lost := invalid || !st.hasEpoch
		if epoch, ok := parseStreamID(st.epoch); st.hasEpoch && ok && since.less(epoch) {
			lost = true
		}
		if st.info == nil {
			// No history (never published, or rsyslog only). Without a
			// sequence (its shard's, or in a cluster its bucket's) Redis
			// lost its data.
			if lost {
				lostLife = true
			}
			continue
		}
		f, g := resumeFrom(since, !lost, lostAfter(st.info, since))
		from[ch] = f
		gap = gap || g
		lostLife = lostLife || lost
	}
	return from, lostLife, gap || lostLife, nil
}

// streamState is what streamStates reads of one channel.
type streamState struct {
	epoch    string // first ID of the life of the channel's ID sequence
	hasEpoch bool   // false: Redis has no sequence (it lost its data)
	info     *redis.XInfoStream
}

// streamStates reads in one round trip the epoch of each channel's ID
// sequence and XINFO STREAM of each channel (nil for a channel without a
// stream).
func (sh *redisShard) streamStates(ctx context.Context, channels []string) ([]streamState, error) {
	keys := sh.keys
	pipe := sh.client.Pipeline()
	epochs := make([]*redis.StringCmd, len(channels))
	cmds := make([]*redis.XInfoStreamCmd, len(channels))
	for i, ch := range channels {
		epochs[i] = pipe.HGet(ctx, keys.state(ch), "epoch")
		cmds[i] = pipe.XInfoStream(ctx, keys.stream(ch))
	}
	_, _ = pipe.Exec(ctx)
	out := make([]streamState, len(channels))
	for i, ch := range channels {
		epoch, err := epochs[i].Result()
		switch {
		case err == redis.Nil:
		case err != nil:
			return nil, fmt.Errorf("read id state: %w", err)
		default:
			out[i].epoch, out[i].hasEpoch = epoch, true
		}
		info, err := cmds[i].Result()
		switch {
		case isNoSuchKey(err):
		case err != nil:
			return nil, fmt.Errorf("xinfo stream %s: %w", ch, err)
		default:
			out[i].info = info
		}
	}
	return out, nil
}

// lostAfter reports whether the stream lost records after since: deleted
// ones (max-deleted-entry-id), or trimmed ones. Redis 7.0 does not record
// trimmed IDs, only that entries-added exceeds the length; trimming removes
// the oldest, so records after since were lost when since is older than the
// first entry kept (or than the last ID when nothing is kept). A since just
// between the last trimmed and the first kept record is taken for a gap
// too: the client is told of a loss that did not happen, never handed a
// hole.
func lostAfter(info *redis.XInfoStream, since position) bool {
	if md, ok := parseStreamID(info.MaxDeletedEntryID); ok && since.less(md) {
		return true
	}
	if info.EntriesAdded <= info.Length {
		return false
	}
	oldest := info.FirstEntry.ID
	if info.Length == 0 || oldest == "" {
		oldest = info.LastGeneratedID
	}
	first, ok := parseStreamID(oldest)
	return ok && since.less(first)
}

// isNoSuchKey reports whether err is Redis saying the key does not exist.
func isNoSuchKey(err error) bool { return err != nil && strings.Contains(err.Error(), "no such key") }

// readAfter reads every record after from[channel], per channel, in pages
// of entries; the entry holding from[channel] itself is read first, since
// its later records come after it.
func (sh *redisShard) readAfter(ctx context.Context, from map[string]position) ([]historyEntry, error) {
	keys := sh.keys
	var out []historyEntry
	type cursor struct {
		floor position // records after it are wanted
		after position // entries after it are still to read
		first bool     // the entry holding floor is still to read
	}
	todo := make(map[string]*cursor, len(from))
	for ch, id := range from {
		todo[ch] = &cursor{floor: id, after: id, first: !id.isZero()}
	}
	for len(todo) > 0 {
		pipe := sh.client.Pipeline()
		heads := make(map[string]*redis.XMessageSliceCmd)
		cmds := make(map[string]*redis.XMessageSliceCmd, len(todo))
		for ch, c := range todo {
			if c.first {
				heads[ch] = pipe.XRevRangeN(ctx, keys.stream(ch), c.floor.String(), "-", 1)
			}
			start := "-"
			if !c.after.isZero() {
				start = "(" + c.after.String()
			}
			cmds[ch] = pipe.XRangeN(ctx, keys.stream(ch), start, "+", fillPage)
		}
		_, _ = pipe.Exec(ctx)
		for ch, cmd := range heads {
			msgs, err := cmd.Result()
			if err != nil {
				return nil, fmt.Errorf("xrevrange %s: %w", ch, err)
			}
			c := todo[ch]
			c.first = false
			for _, m := range msgs {
				out = appendEntryRecords(out, ch, m, c.floor)
			}
		}
		for ch, cmd := range cmds {
			msgs, err := cmd.Result()
			if err != nil {
				return nil, fmt.Errorf("xrange %s: %w", ch, err)
			}
			c := todo[ch]
			for _, m := range msgs {
				out = appendEntryRecords(out, ch, m, c.floor)
				if id, ok := parseStreamID(m.ID); ok {
					c.after = id
				}
			}
			if len(msgs) < fillPage {
				delete(todo, ch)
			}
		}
	}
	return out, nil
}

// readTail reads the newest n records of each channel, in pages of entries
// read backwards until n records are in or the stream ends.
func (sh *redisShard) readTail(ctx context.Context, channels []string, n int) ([]historyEntry, error) {
	keys := sh.keys
	type cursor struct {
		before string // entries before it are still to read
		got    int
	}
	todo := make(map[string]*cursor, len(channels))
	for _, ch := range channels {
		todo[ch] = &cursor{before: "+"}
	}
	var out []historyEntry
	page := int64(min(n, 64))
	for len(todo) > 0 {
		pipe := sh.client.Pipeline()
		cmds := make(map[string]*redis.XMessageSliceCmd, len(todo))
		for ch, c := range todo {
			cmds[ch] = pipe.XRevRangeN(ctx, keys.stream(ch), c.before, "-", page)
		}
		_, _ = pipe.Exec(ctx)
		for ch, cmd := range cmds {
			msgs, err := cmd.Result()
			if err != nil {
				return nil, fmt.Errorf("xrevrange %s: %w", ch, err)
			}
			c := todo[ch]
			for _, m := range msgs {
				k := len(out)
				out = appendEntryRecords(out, ch, m, position{})
				c.got += len(out) - k
				c.before = "(" + m.ID
			}
			if len(msgs) < int(page) || c.got >= n {
				delete(todo, ch)
			}
		}
		page = min(page*4, fillPage)
	}
	return out, nil
}

// fillGap delivers, after the pub/sub connection came back, the records
// published while it was down: for every channel of the shard seen or
// registered, the records after the last one delivered. Live records that
// follow and were already delivered here are skipped by handle. When
// entries were trimmed before they could be read, when Redis lost its data,
// or when records without stream entries (rsyslog) may have been missed,
// subscribers are told of a gap.
func (rd *redisReader) fillGap(ctx context.Context) error {
	r, sh := rd.src, rd.sh
	registered, err := sh.client.ZRange(ctx, r.keys.registry(), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("channel registry: %w", err)
	}
	base := rd.lastAny
	if base.less(rd.startID) {
		base = rd.startID
	}
	from := make(map[string]position, len(registered)+len(rd.lastID))
	for _, ch := range registered {
		switch {
		case !rd.owns(ch):
		case rd.slots != nil:
			from[ch] = rd.bucketBase(bucketOf(ch)) // a cluster: per bucket
		default:
			from[ch] = base
		}
	}
	for ch, id := range rd.lastID {
		from[ch] = id
	}
	for ch, id := range from {
		if id.isZero() {
			// Nothing delivered and no start time: only what comes next.
			delete(from, ch)
		}
	}
	channels := make([]string, 0, len(from))
	for ch := range from {
		channels = append(channels, ch)
	}
	states, err := sh.streamStates(ctx, channels)
	if err != nil {
		return err
	}
	gap := rd.sawPlain
	for i, ch := range channels {
		st := states[i]
		if epoch, ok := parseStreamID(st.epoch); st.hasEpoch && ok {
			if last, seen := rd.lastID[ch]; seen && last.less(epoch) {
				gap = true // Redis restarted without our last records: some may be gone
			}
		}
		switch {
		case st.info == nil:
			delete(from, ch)
		case lostAfter(st.info, from[ch]):
			gap = true // records we never delivered were trimmed
		}
	}
	entries, err := sh.readAfter(ctx, from)
	if err != nil {
		return err
	}
	sortEntries(entries)
	if gap {
		r.fan.markGap()
	}
	now := time.Now()
	n := 0
	for i := range entries {
		e := &entries[i]
		if !rd.advance(e.rec.Channel, e.id) {
			continue
		}
		n++
		r.stats.add(e.rec.Channel, now)
		r.fan.deliver(e.rec)
	}
	if n > 0 {
		rd.publishFloor()
		sh.log.Info("redis gap filled from the streams", "records", n, "gap", gap)
	}
	return nil
}
