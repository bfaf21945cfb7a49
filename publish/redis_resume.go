package publish

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/logviewer/logviewer/internal/glob"
)

// Resume tokens of subscriptions that span several ID sequences.
//
// A record's ID is a position in one ID sequence: that of its shard (a
// standalone Redis: all its channels share one), or in a Redis Cluster
// that of its channel. One position resumes exactly only the channels of
// its own sequence; positions of different sequences do not order records
// the way a stream node delivered them (two shards' notifications reach
// two stream nodes interleaved differently). So a subscription whose
// channels may span several sequences (a glob, or channels of several
// shards) gets, in place of each record's ID, a resume token naming where
// it stands in every sequence:
//
//	<ms>-<seq>~<unit>{.<unit>_<d>_<seq>}
//
// <ms>-<seq> is the record's own ID, and <unit> (base 36) its sequence: the
// shard's index, or in a cluster a 32-bit FNV-1a hash of the channel. Each
// further item is the position of the last record delivered of another
// sequence, as its milliseconds' distance d below the record's own (a
// negative d is later) and its sequence number. An item with no unit is
// the position of every sequence not listed. A token is what the client
// sends back (SSE Last-Event-ID, ?since=): a resume on any stream node
// starts each sequence after its position, so every record comes once.
//
// Standalone shards are few: their token lists every shard. A cluster's
// sequences are its channels, too many to list: its token lists those
// whose position is later than the record's own milliseconds less
// resumeSlack, and the others resume from that point, which is exact as
// long as no master delivers records more than resumeSlack late. A token
// that would exceed maxTokenLen leaves out the oldest positions (those
// sequences then resume from that point too and may repeat records).
// Single-channel subscriptions, and every subscription of one standalone
// Redis, keep the plain record ID: one position is exact there.
const (
	resumeSlack = 2000 // ms
	maxTokenLen = 128  // the stream server refuses longer resume IDs
)

// resumePoint is a parsed resume ID: per ID sequence where to resume.
type resumePoint struct {
	units map[uint32]position // listed sequences (nil for a plain ID)
	def   position            // every other sequence
}

// at returns the position of sequence unit.
func (rp *resumePoint) at(unit uint32) position {
	if p, ok := rp.units[unit]; ok {
		return p
	}
	return rp.def
}

// parseResume parses a resume ID: a plain event ID (every sequence resumes
// after it, as before tokens), or a token (see the comment at the top).
func parseResume(s string) (resumePoint, bool) {
	id, rest, isToken := strings.Cut(s, "~")
	base, ok := parseStreamID(id)
	if !ok {
		return resumePoint{}, false
	}
	if !isToken {
		return resumePoint{def: base}, true
	}
	rp := resumePoint{units: make(map[uint32]position), def: position{ms: base.ms - min(base.ms, resumeSlack)}}
	own, items, _ := strings.Cut(rest, ".")
	u, err := strconv.ParseUint(own, 36, 32)
	if err != nil {
		return resumePoint{}, false
	}
	rp.units[uint32(u)] = base
	for items != "" {
		var item string
		item, items, _ = strings.Cut(items, ".")
		unit, d, seq, ok := parseTokenItem(item)
		if !ok {
			return resumePoint{}, false
		}
		var ms uint64
		switch {
		case d >= 0 && uint64(d) <= base.ms:
			ms = base.ms - uint64(d)
		case d < 0 && uint64(-d) <= math.MaxUint64-base.ms:
			ms = base.ms + uint64(-d)
		default:
			return resumePoint{}, false
		}
		p := position{ms: ms, seq: seq}
		if unit == "" {
			rp.def = p
			continue
		}
		n, err := strconv.ParseUint(unit, 36, 32)
		if err != nil {
			return resumePoint{}, false
		}
		rp.units[uint32(n)] = p
	}
	return rp, true
}

// parseTokenItem splits "<unit>_<d>_<seq>".
func parseTokenItem(item string) (unit string, d int64, seq uint64, ok bool) {
	unit, rest, ok1 := strings.Cut(item, "_")
	ds, ss, ok2 := strings.Cut(rest, "_")
	if !ok1 || !ok2 || ds == "" || ss == "" || ds[0] == '+' || ss[0] == '+' || ss[0] == '-' {
		return "", 0, 0, false
	}
	d, err1 := strconv.ParseInt(ds, 10, 64)
	seq, err2 := strconv.ParseUint(ss, 10, 64)
	return unit, d, seq, err1 == nil && err2 == nil && d != math.MinInt64
}

// channelHash is a cluster channel's unit in tokens: FNV-1a of its name.
func channelHash(channel string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(channel); i++ {
		h ^= uint32(channel[i])
		h *= 16777619
	}
	return h
}

// unitOf returns the ID sequence a channel's records take their IDs from.
func (s *RedisSource) unitOf(channel string) uint32 {
	if s.keys.cluster {
		return channelHash(channel)
	}
	return uint32(shardIndex(channel, len(s.shards)))
}

// spansUnits reports whether a subscription to pattern may get records of
// more than one ID sequence, and so needs resume tokens.
func (s *RedisSource) spansUnits(pattern string) bool {
	if !s.keys.cluster && len(s.shards) == 1 {
		return false
	}
	first, seen := uint32(0), false
	for _, p := range glob.Split(pattern) {
		if glob.HasMeta(p) {
			return true
		}
		u := s.unitOf(p)
		if seen && u != first {
			return true
		}
		first, seen = u, true
	}
	return false
}

// before returns the position just before p.
func before(p position) position {
	switch {
	case p.seq > 0:
		return position{ms: p.ms, seq: p.seq - 1}
	case p.ms > 0:
		return position{ms: p.ms - 1, seq: math.MaxUint64}
	}
	return p
}

// startFloors returns where a new subscription starts in each sequence it
// has no other start for: per standalone shard the last record its reader
// delivered (all later ones reach the subscription live), and for a
// cluster's channels resumeSlack before the oldest of its masters' last
// records (a master's channels may deliver out of ID order).
func (s *RedisSource) startFloors() (shards []position, cluster position) {
	now := position{ms: uint64(max(time.Now().UnixMilli()-1000, 1))}
	if s.keys.cluster {
		var low position
		for i, rd := range s.shards[0].snapshotReaders() {
			if f := rd.deliveredFloor(); i == 0 || f.less(low) {
				low = f
			}
		}
		if low.isZero() {
			low = now
		}
		return nil, position{ms: low.ms - min(low.ms, resumeSlack)}
	}
	shards = make([]position, len(s.shards))
	for i, sh := range s.shards {
		shards[i] = now
		for _, rd := range sh.snapshotReaders() {
			if f := rd.deliveredFloor(); !f.isZero() {
				shards[i] = f
			}
		}
	}
	return shards, position{}
}

// cursorSub wraps a subscription that spans several ID sequences: it
// tracks the last record delivered of each and gives every record a resume
// token in place of its ID (see the comment at the top).
type cursorSub struct {
	inner   Subscription
	src     *RedisSource
	cluster bool
	cur     map[uint32]position // the last record delivered per sequence (or where it starts)
	def     position            // cluster: the start of sequences not in cur

	// recent (cluster only, in place of cur) holds the sequences with the
	// latest positions, latest first, at most maxRecent: more than a token
	// has room for, so a token lists the same ones as if every sequence
	// were sorted, at a cost per record that does not grow with the
	// number of channels.
	recent []tokenItem

	// the last token's items, reused while records of one sequence and
	// millisecond follow one another
	lastUnit uint32
	lastMS   uint64
	suffix   []byte
	items    []tokenItem
	token    []byte // scratch
}

// maxRecent bounds a cluster subscription's recent sequences: a token item
// takes 6 bytes at least, so a token has room for 14 at most.
const maxRecent = 16

// tokenItem is one listed sequence of a token.
type tokenItem struct {
	unit uint32
	pos  position
	def  bool // the position of the sequences not listed
}

// newCursorSub wraps inner; the cursors start at the sequences' starts:
// for a resume its positions, else before the first backfilled record of
// each sequence, else the start floors (see startFloors).
func newCursorSub(s *RedisSource, inner Subscription, rp *resumePoint, backfill []Event, floors []position, clusterFloor position) *cursorSub {
	c := &cursorSub{inner: inner, src: s, cluster: s.keys.cluster, cur: make(map[uint32]position)}
	if rp != nil {
		c.def = rp.def
		for u, p := range rp.units {
			c.cur[u] = p
		}
	} else {
		c.def = clusterFloor
		for i := range backfill {
			if backfill[i].Kind != EventRecord {
				continue
			}
			rec := &backfill[i].Record
			u := s.unitOf(rec.Channel)
			if _, ok := c.cur[u]; ok {
				continue
			}
			if p, ok := parseStreamID(rec.ID); ok {
				c.cur[u] = before(p)
			}
		}
	}
	if c.cluster {
		for u, p := range c.cur {
			c.noteRecent(u, p)
		}
		c.cur = nil
	} else {
		for i := range floors {
			if _, ok := c.cur[uint32(i)]; !ok {
				if rp != nil {
					c.cur[uint32(i)] = rp.at(uint32(i))
				} else {
					c.cur[uint32(i)] = floors[i]
				}
			}
		}
	}
	return c
}

// Next returns the inner subscription's events, each record with its
// resume token as ID.
func (c *cursorSub) Next(ctx context.Context, buf []Event) ([]Event, error) {
	start := len(buf)
	out, err := c.inner.Next(ctx, buf)
	for i := start; i < len(out); i++ {
		if out[i].Kind == EventRecord {
			out[i].Record = c.retag(out[i].Record)
		}
	}
	return out, err
}

// Close closes the inner subscription.
func (c *cursorSub) Close() error { return c.inner.Close() }

// retag advances the cursor of rec's sequence and returns rec with its
// token as ID (in the JSON's "_event_id" and the SSE event too).
func (c *cursorSub) retag(rec Record) Record {
	p, ok := parseStreamID(rec.ID)
	if !ok {
		return rec // no ID (rsyslog's plain PUBLISH): no position
	}
	u := c.src.unitOf(rec.Channel)
	if c.cluster {
		c.noteRecent(u, p)
	} else if last, ok := c.cur[u]; !ok || last.less(p) {
		c.cur[u] = p
	}
	if c.suffix == nil || u != c.lastUnit || p.ms != c.lastMS {
		c.buildSuffix(u, p)
	}
	token := strconv.AppendUint(c.token[:0], p.ms, 10)
	token = append(token, '-')
	token = strconv.AppendUint(token, p.seq, 10)
	token = append(token, c.suffix...)
	c.token = token
	return withID(rec, token)
}

// noteRecent records p as sequence u's position, when later than the one
// known, in the cluster's recent sequences, kept latest first (equal
// positions by unit).
func (c *cursorSub) noteRecent(u uint32, p position) {
	if i := slices.IndexFunc(c.recent, func(it tokenItem) bool { return it.unit == u }); i >= 0 {
		if !c.recent[i].pos.less(p) {
			return
		}
		c.recent = slices.Delete(c.recent, i, i+1)
	}
	it := tokenItem{unit: u, pos: p}
	j := 0
	for j < len(c.recent) && compareItems(c.recent[j], it) < 0 {
		j++
	}
	if j == maxRecent {
		return // older than all it keeps
	}
	if c.recent == nil {
		c.recent = make([]tokenItem, 0, maxRecent+1)
	}
	c.recent = slices.Insert(c.recent, j, it)
	if len(c.recent) > maxRecent {
		c.recent = c.recent[:maxRecent]
	}
}

// compareItems orders a token's items: the default first, then the latest
// positions, equal positions by unit.
func compareItems(a, b tokenItem) int {
	switch {
	case a.def != b.def:
		if a.def {
			return -1
		}
		return 1
	case a.pos != b.pos:
		return b.pos.compare(a.pos)
	}
	return cmp.Compare(a.unit, b.unit)
}

// buildSuffix builds the token's part after the record's own ID, for a
// record at p of sequence u.
func (c *cursorSub) buildSuffix(u uint32, p position) {
	c.lastUnit, c.lastMS = u, p.ms
	floor := position{ms: p.ms - min(p.ms, resumeSlack)}
	items := c.items[:0]
	if c.cluster {
		// The default, when later than the floor, then every sequence
		// later than the floor (all of them when the default is later:
		// unlisted ones would resume from it): recent is in that order.
		all := floor.less(c.def)
		if all {
			items = append(items, tokenItem{pos: c.def, def: true})
		}
		for _, it := range c.recent {
			if !all && !floor.less(it.pos) {
				break // resumes from the floor, as unlisted ones do
			}
			if it.unit != u {
				items = append(items, it)
			}
		}
	} else {
		for v, q := range c.cur {
			if v != u {
				items = append(items, tokenItem{unit: v, pos: q})
			}
		}
		// The latest positions first: what does not fit is the oldest.
		slices.SortFunc(items, compareItems)
	}
	c.suffix, c.items = appendSuffix(c.suffix[:0], u, p, items), items[:0]
}

// appendSuffix appends the part of a token after the own ID p of sequence
// u: "~<u>", then items in their order while the token stays within
// maxTokenLen.
func appendSuffix(s []byte, u uint32, p position, items []tokenItem) []byte {
	start := len(s)
	s = append(s, '~')
	s = strconv.AppendUint(s, uint64(u), 36)
	room := maxTokenLen - len(strconv.FormatUint(p.ms, 10)) - 21 // the own ID, its seq at its longest
	for _, it := range items {
		k := len(s)
		s = append(s, '.')
		if !it.def {
			s = strconv.AppendUint(s, uint64(it.unit), 36)
		}
		s = append(s, '_')
		if it.pos.ms <= p.ms {
			s = strconv.AppendUint(s, p.ms-it.pos.ms, 10)
		} else {
			s = append(s, '-')
			s = strconv.AppendUint(s, it.pos.ms-p.ms, 10)
		}
		s = append(s, '_')
		s = strconv.AppendUint(s, it.pos.seq, 10)
		if len(s)-start > room {
			s = s[:k]
			break
		}
	}
	return s
}

// withID returns rec with id as its event ID: its JSON's "_event_id" and,
// when it has one, its SSE event rebuilt in one buffer, which the ID
// string shares.
func withID(rec Record, id []byte) Record {
	const head = `{"_event_id":"`
	js := rec.JSON
	if len(js) < len(head)+len(rec.ID)+1 || string(js[:len(head)]) != head ||
		string(js[len(head):len(head)+len(rec.ID)]) != rec.ID || js[len(head)+len(rec.ID)] != '"' {
		rec.ID, rec.SSE = string(id), nil // not our layout: the SSE event is built from ID and JSON
		return rec
	}
	rest := js[len(head)+len(rec.ID):]
	if rec.SSE == nil {
		out := make([]byte, 0, len(head)+len(id)+len(rest))
		out = append(append(append(out, head...), id...), rest...)
		return Record{Channel: rec.Channel, ID: unsafe.String(&out[len(head)], len(id)), JSON: out}
	}
	ev := make([]byte, 0, len(sseIDPrefix)+len(id)+len(sseDataPrefix)+len(head)+len(id)+len(rest)+len(sseEnd))
	ev = append(ev, sseIDPrefix...)
	ev = append(ev, id...)
	ev = append(ev, sseDataPrefix...)
	start := len(ev)
	ev = append(append(append(ev, head...), id...), rest...)
	end := len(ev)
	ev = append(ev, sseEnd...)
	return Record{Channel: rec.Channel, ID: unsafe.String(&ev[len(sseIDPrefix)], len(id)), SSE: ev, JSON: ev[start:end:end]}
}
