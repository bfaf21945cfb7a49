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
// that of its channel's bucket (see clusterBuckets). One position resumes
// exactly only the channels of its own sequence; positions of different
// sequences do not order records the way a stream node delivered them (two
// shards' notifications reach two stream nodes interleaved differently).
// So a subscription whose channels may span several sequences (a glob, or
// channels of several shards or buckets) gets, in place of each record's
// ID, a resume token naming where it stands in every sequence:
//
//	<ms>-<seq>~<unit>{.<unit>_<d>_<seq>}
//
// <ms>-<seq> is the record's own ID, and <unit> (base 36) its sequence: the
// shard's index, or in a cluster the bucket's. Each further item is the
// position of the last record delivered of another sequence (or where the
// subscription started in it), as its milliseconds' distance d below the
// record's own (a negative d is later) and its sequence number. A token is
// what the client sends back (SSE Last-Event-ID, ?since=): a resume on any
// stream node starts each sequence after its position, so every record
// comes once.
//
// A token lists every sequence. A cluster has clusterBuckets of them, and
// maxTokenLen holds such a token whatever its positions (see
// TestClusterTokenFits). Only more standalone shards than fit would leave
// some out: the token then ends with an item without unit, the oldest
// position of those left out, where they all resume (they may repeat
// records, never miss one); a token without such an item resumes a
// sequence it does not list after the oldest position it lists.
// Single-channel subscriptions, and every subscription of one standalone
// Redis, keep the plain record ID: one position is exact there.
const (
	// maxTokenItem bounds one item: '.', a bucket's unit, '_', d (a sign
	// and 19 digits), '_', seq (20 digits).
	maxTokenItem = 1 + 1 + 1 + 20 + 1 + 20
	// maxTokenLen bounds a token: the own ID (two 20-digit numbers and a
	// dash), '~' and its unit, and an item per other bucket of a cluster.
	// The stream server refuses longer resume IDs (keep its maxIDLen the
	// same).
	maxTokenLen = 768
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
	rp := resumePoint{units: make(map[uint32]position), def: base}
	own, items, _ := strings.Cut(rest, ".")
	u, err := strconv.ParseUint(own, 36, 32)
	if err != nil {
		return resumePoint{}, false
	}
	rp.units[uint32(u)] = base
	hasDef := false
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
			rp.def, hasDef = p, true
			continue
		}
		n, err := strconv.ParseUint(unit, 36, 32)
		if err != nil {
			return resumePoint{}, false
		}
		rp.units[uint32(n)] = p
		if !hasDef && p.less(rp.def) {
			rp.def = p
		}
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

// unitOf returns the ID sequence a channel's records take their IDs from:
// its shard's, or in a cluster its bucket's.
func (s *RedisSource) unitOf(channel string) uint32 {
	if s.keys.cluster {
		return uint32(bucketOf(channel))
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
// has no other start for, by unit: the last record of the sequence that
// the reader of its shard (in a cluster, of its bucket's slot) delivered,
// or where that reader started: all later ones reach the subscription
// live.
func (s *RedisSource) startFloors() []position {
	now := position{ms: uint64(max(time.Now().UnixMilli()-1000, 1))}
	if s.keys.cluster {
		floors := make([]position, clusterBuckets)
		readers := s.shards[0].snapshotReaders()
		for k := range floors {
			floors[k] = now
			slot := bucketSlot(k)
			for _, rd := range readers {
				if rd.slots == nil || !rd.slots[slot] {
					continue
				}
				if f := rd.bucketFloor(k); !f.isZero() {
					floors[k] = f
				}
			}
		}
		return floors
	}
	floors := make([]position, len(s.shards))
	for i, sh := range s.shards {
		floors[i] = now
		for _, rd := range sh.snapshotReaders() {
			if f := rd.deliveredFloor(); !f.isZero() {
				floors[i] = f
			}
		}
	}
	return floors
}

// cursorSub wraps a subscription that spans several ID sequences: it
// tracks the last record delivered of each and gives every record a resume
// token in place of its ID (see the comment at the top).
type cursorSub struct {
	inner Subscription
	src   *RedisSource
	cur   []position // by unit: the last record delivered of the sequence (or where it starts)

	// the last token's items, reused while records of one sequence and
	// millisecond follow one another
	lastUnit uint32
	lastMS   uint64
	suffix   []byte
	items    []tokenItem
	token    []byte // scratch
}

// tokenItem is one listed sequence of a token.
type tokenItem struct {
	unit uint32
	pos  position
	def  bool // the position of the sequences not listed
}

// newCursorSub wraps inner; floors has one start per sequence (by unit,
// see startFloors). The cursors start at the sequences' starts: for a
// resume its positions, else before the first backfilled record of each
// sequence, else the floors.
func newCursorSub(s *RedisSource, inner Subscription, rp *resumePoint, backfill []Event, floors []position) *cursorSub {
	c := &cursorSub{inner: inner, src: s, cur: slices.Clone(floors)}
	if rp != nil {
		for u := range c.cur {
			c.cur[u] = rp.at(uint32(u))
		}
		return c
	}
	seen := make([]bool, len(c.cur))
	for i := range backfill {
		if backfill[i].Kind != EventRecord {
			continue
		}
		rec := &backfill[i].Record
		u := s.unitOf(rec.Channel)
		if int(u) >= len(c.cur) || seen[u] {
			continue
		}
		if p, ok := parseStreamID(rec.ID); ok {
			c.cur[u], seen[u] = before(p), true
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
	if int(u) < len(c.cur) && c.cur[u].less(p) {
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
// record at p of sequence u: every other sequence's position.
func (c *cursorSub) buildSuffix(u uint32, p position) {
	c.lastUnit, c.lastMS = u, p.ms
	items := c.items[:0]
	for v, q := range c.cur {
		if uint32(v) != u {
			items = append(items, tokenItem{unit: uint32(v), pos: q})
		}
	}
	c.suffix, c.items = appendSuffix(c.suffix[:0], u, p, items), items[:0]
}

// appendSuffix appends the part of a token after the own ID p of sequence
// u: "~<u>", then the items. When they do not all fit within maxTokenLen,
// it sorts items, latest positions first, and appends those that fit, then
// an item without unit: the oldest position of those left out, where they
// resume.
func appendSuffix(s []byte, u uint32, p position, items []tokenItem) []byte {
	start := len(s)
	s = append(s, '~')
	s = strconv.AppendUint(s, uint64(u), 36)
	room := maxTokenLen - len(strconv.FormatUint(p.ms, 10)) - 21 // the own ID, its seq at its longest
	head := len(s)
	for _, it := range items {
		s = appendTokenItem(s, p, it)
	}
	if len(s)-start <= room || len(items) == 0 {
		return s
	}
	// Too long: the latest that fit with the default item of the rest.
	slices.SortFunc(items, compareItems)
	oldest := tokenItem{pos: items[len(items)-1].pos, def: true}
	room -= len(appendTokenItem(nil, p, oldest))
	s = s[:head]
	for _, it := range items {
		k := len(s)
		if s = appendTokenItem(s, p, it); len(s)-start > room {
			s = s[:k]
			break
		}
	}
	return appendTokenItem(s, p, oldest)
}

// appendTokenItem appends ".<unit>_<d>_<seq>" for it in a token whose own
// ID is p (no unit for the default item).
func appendTokenItem(s []byte, p position, it tokenItem) []byte {
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
	return strconv.AppendUint(s, it.pos.seq, 10)
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
