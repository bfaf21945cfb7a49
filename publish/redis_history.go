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

// historyEntry is one stream entry read for a backfill or a gap fill.
type historyEntry struct {
	id      streamID
	channel string
	msg     redis.XMessage
}

// record builds the Record of e, with "_event_id" and "_channel" first.
// Entries hold the GELF as published, with "_event_id" in it.
func (e *historyEntry) record() Record {
	d, _ := e.msg.Values["d"].(string)
	if id, rest, ok := splitEventID(d); ok && id == e.msg.ID {
		js, _ := publishedJSON(e.channel, e.msg.ID, rest)
		return Record{Channel: e.channel, ID: e.msg.ID, JSON: js}
	}
	b := []byte(d)
	return Record{
		Channel: e.channel,
		ID:      e.msg.ID,
		JSON:    AnnotateJSON(make([]byte, 0, len(b)+len(e.channel)+48), e.msg.ID, e.channel, b),
	}
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
		return strings.Compare(a.channel, b.channel)
	})
}

// matchChannels lists the channels a pattern (or a comma-separated list of
// them) names: its plain names as they are, and the registered channels its
// globs match.
func (r *Redis) matchChannels(ctx context.Context, pattern string) ([]string, error) {
	var out, globs []string
	seen := map[string]bool{}
	for _, p := range glob.Split(pattern) {
		if glob.HasMeta(p) {
			globs = append(globs, p)
		} else if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(globs) == 0 {
		return out, nil
	}
	all, err := r.client.ZRange(ctx, r.keys.registry(), 0, -1).Result()
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

// history reads the backfill a subscription asks for, and returns the skip
// function that drops live records already in it (or not after the resume
// point).
func (r *Redis) history(ctx context.Context, pattern string, opts SubscribeOptions) ([]Event, func(Record) bool, error) {
	channels, err := r.matchChannels(ctx, pattern)
	if err != nil {
		return nil, nil, fmtUnreachable(err)
	}
	var (
		entries []historyEntry
		gap     bool
		from    map[string]streamID
		def     streamID // floor of channels without history yet
	)
	resume := opts.Since != ""
	if resume {
		since, ok := parseStreamID(opts.Since)
		var lostLife bool
		from, lostLife, gap, err = r.resumePoints(ctx, channels, since, !ok)
		if err != nil {
			return nil, nil, fmtUnreachable(err)
		}
		if !lostLife {
			def = since
		}
		entries, err = r.readAfter(ctx, from)
	} else {
		entries, err = r.readTail(ctx, channels, opts.Tail)
	}
	if err != nil {
		return nil, nil, fmtUnreachable(err)
	}
	sortEntries(entries)
	floor := make(map[string]streamID, len(channels))
	for ch, id := range from {
		floor[ch] = id
	}
	for _, e := range entries {
		if f := floor[e.channel]; f.less(e.id) {
			floor[e.channel] = e.id
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
		backfill = append(backfill, Event{Kind: EventRecord, Record: entries[i].record()})
	}
	skip := func(rec Record) bool {
		id, ok := parseStreamID(rec.ID)
		if !ok {
			return false // no ID (rsyslog): never in a history
		}
		f, ok := floor[rec.Channel]
		if !ok {
			f = def
		}
		return !f.less(id)
	}
	return backfill, skip, nil
}

// resumePoints decides where each channel's history starts for a resume
// after since: after since, or from the oldest entry kept when entries after
// since were trimmed (XINFO STREAM max-deleted-entry-id, Redis 7), or, for
// every channel, when since is from an earlier life of Redis (before the
// epoch of the ID sequence, or no sequence at all: Redis lost its data) or
// is no stream ID (invalid). Channels without a stream are left out.
func (r *Redis) resumePoints(ctx context.Context, channels []string, since streamID, invalid bool) (from map[string]streamID, lostLife, gap bool, err error) {
	epochStr, hasEpoch, infos, err := r.streamStates(ctx, channels)
	if err != nil {
		return nil, false, false, err
	}
	lostLife = invalid || !hasEpoch
	if epoch, ok := parseStreamID(epochStr); hasEpoch && ok && since.less(epoch) {
		lostLife = true
	}
	gap = lostLife
	from = make(map[string]streamID, len(channels))
	for i, ch := range channels {
		switch info := infos[i]; {
		case info == nil:
			// no history (never published, or rsyslog only)
		case lostLife:
			from[ch] = streamID{}
		case lostAfter(info, since):
			from[ch] = streamID{}
			gap = true
		default:
			from[ch] = since
		}
	}
	return from, lostLife, gap, nil
}

// streamStates reads in one round trip the epoch of the ID sequence
// (hasEpoch false when Redis has none: it lost its data) and XINFO STREAM
// of each channel (nil for a channel without a stream).
func (r *Redis) streamStates(ctx context.Context, channels []string) (epoch string, hasEpoch bool, infos []*redis.XInfoStream, err error) {
	pipe := r.client.Pipeline()
	epochCmd := pipe.HGet(ctx, r.keys.state(), "epoch")
	cmds := make([]*redis.XInfoStreamCmd, len(channels))
	for i, ch := range channels {
		cmds[i] = pipe.XInfoStream(ctx, r.keys.stream(ch))
	}
	_, _ = pipe.Exec(ctx)
	epoch, err = epochCmd.Result()
	switch {
	case err == redis.Nil:
	case err != nil:
		return "", false, nil, fmt.Errorf("read id state: %w", err)
	default:
		hasEpoch = true
	}
	infos = make([]*redis.XInfoStream, len(channels))
	for i, ch := range channels {
		info, err := cmds[i].Result()
		switch {
		case isNoSuchKey(err):
		case err != nil:
			return "", false, nil, fmt.Errorf("xinfo stream %s: %w", ch, err)
		default:
			infos[i] = info
		}
	}
	return epoch, hasEpoch, infos, nil
}

// lostAfter reports whether the stream lost entries after since: deleted
// ones (max-deleted-entry-id), or trimmed ones. Redis 7.0 does not record
// trimmed IDs, only that entries-added exceeds the length; trimming removes
// the oldest, so entries after since were lost when since is older than the
// first entry kept (or than the last ID when nothing is kept). A since just
// between the last trimmed and the first kept entry is taken for a gap too:
// the client is told of a loss that did not happen, never handed a hole.
func lostAfter(info *redis.XInfoStream, since streamID) bool {
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

// readAfter reads every entry after from[channel], per channel, in pages.
func (r *Redis) readAfter(ctx context.Context, from map[string]streamID) ([]historyEntry, error) {
	var out []historyEntry
	todo := make(map[string]streamID, len(from))
	for ch, id := range from {
		todo[ch] = id
	}
	for len(todo) > 0 {
		pipe := r.client.Pipeline()
		cmds := make(map[string]*redis.XMessageSliceCmd, len(todo))
		for ch, id := range todo {
			start := "-"
			if !id.isZero() {
				start = "(" + id.String()
			}
			cmds[ch] = pipe.XRangeN(ctx, r.keys.stream(ch), start, "+", fillPage)
		}
		_, _ = pipe.Exec(ctx)
		for ch, cmd := range cmds {
			msgs, err := cmd.Result()
			if err != nil {
				return nil, fmt.Errorf("xrange %s: %w", ch, err)
			}
			for _, m := range msgs {
				id, ok := parseStreamID(m.ID)
				if !ok {
					continue
				}
				out = append(out, historyEntry{id: id, channel: ch, msg: m})
				todo[ch] = id
			}
			if len(msgs) < fillPage {
				delete(todo, ch)
			}
		}
	}
	return out, nil
}

// readTail reads the newest n entries of each channel.
func (r *Redis) readTail(ctx context.Context, channels []string, n int) ([]historyEntry, error) {
	pipe := r.client.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(channels))
	for i, ch := range channels {
		cmds[i] = pipe.XRevRangeN(ctx, r.keys.stream(ch), "+", "-", int64(n))
	}
	_, _ = pipe.Exec(ctx)
	var out []historyEntry
	for i, cmd := range cmds {
		msgs, err := cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("xrevrange %s: %w", channels[i], err)
		}
		for _, m := range msgs {
			if id, ok := parseStreamID(m.ID); ok {
				out = append(out, historyEntry{id: id, channel: channels[i], msg: m})
			}
		}
	}
	return out, nil
}

// fillGap delivers, after the pub/sub connection came back, the records
// published while it was down: for every channel seen or registered,
// the stream entries after the last one delivered. Live records that follow
// and were already delivered here are skipped by handle. When entries were
// trimmed before they could be read, when Redis lost its data, or when
// records without stream entries (rsyslog) may have been missed,
// subscribers are told of a gap.
func (rd *redisReader) fillGap(ctx context.Context) error {
	r := rd.r
	registered, err := r.client.ZRange(ctx, r.keys.registry(), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("channel registry: %w", err)
	}
	base := rd.lastAny
	if base.less(rd.startID) {
		base = rd.startID
	}
	from := make(map[string]streamID, len(registered)+len(rd.lastID))
	for _, ch := range registered {
		from[ch] = base
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
	epochStr, hasEpoch, infos, err := r.streamStates(ctx, channels)
	if err != nil {
		return err
	}
	gap := rd.sawPlain
	if epoch, ok := parseStreamID(epochStr); hasEpoch && ok && !rd.lastAny.isZero() && rd.lastAny.less(epoch) {
		gap = true // Redis restarted without our last records: some may be gone
	}
	for i, ch := range channels {
		switch {
		case infos[i] == nil:
			delete(from, ch)
		case lostAfter(infos[i], from[ch]):
			gap = true // entries we never delivered were trimmed
		}
	}
	entries, err := r.readAfter(ctx, from)
	if err != nil {
		return err
	}
	sortEntries(entries)
	if gap {
		r.fan.markGap()
	}
	for i := range entries {
		e := &entries[i]
		if l, ok := rd.lastID[e.channel]; ok && !l.less(e.id) {
			continue
		}
		rd.lastID[e.channel] = e.id
		if rd.lastAny.less(e.id) {
			rd.lastAny = e.id
		}
		rec := e.record()
		r.stats.add(e.channel, time.Now())
		r.fan.deliver(rec)
	}
	if len(entries) > 0 {
		r.log.Info("redis gap filled from the streams", "records", len(entries), "gap", gap)
	}
	return nil
}
