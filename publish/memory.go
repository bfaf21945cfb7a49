package publish

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/logviewer/logviewer/archive"
	"github.com/logviewer/logviewer/internal/glob"
	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// MemoryConfig configures the in-memory hub.
type MemoryConfig struct {
	// History is the number of records kept per channel for tail and resume;
	// zero or less keeps none.
	History int
	// HistoryBytes bounds the history of all channels together, in bytes of
	// records (their JSON plus a fixed overhead each): beyond it the oldest
	// records of the largest channels go first. Zero or less: no byte bound.
	HistoryBytes int64
	// MaxChannels bounds the channels the hub knows: a record for a new
	// channel past it is dropped, counted (reason max_channels) and
	// Publish returns ErrTooManyChannels. Zero or less: no bound.
	MaxChannels int
	// ChannelTTL forgets a channel that has no history left and no record
	// for this long. Zero or less: channels are never forgotten.
	ChannelTTL time.Duration
	// QueueBudget bounds the bytes queued for all subscribers together:
	// past it, a subscriber holding more than its share loses its oldest
	// records (counted as slow_subscriber drops). Zero: no bound.
	QueueBudget int64
	// Metrics receives the published and dropped counts; nil counts nothing.
	Metrics *metrics.Metrics
	// Archive, when set, stores every record on disk and serves the tails
	// and resumes that reach past the in-memory history (see archive.go).
	Archive Archive
}

// Memory is the in-memory hub, the embedded bus: records go from Publish
// straight to the subscribers of this process, and the last History records
// of every channel are kept in a ring for tail and resume. Event IDs are
// "<epoch>-<seq>" with epoch the hub's start in Unix milliseconds and seq one
// counter over all channels, so they increase per channel and a glob
// subscription resumes exactly. Memory is safe for concurrent use.
type Memory struct {
	history   int
	maxBytes  int64 // HistoryBytes; 0: unbounded
	maxChans  int
	ttl       time.Duration
	overCap   prometheus.Counter // records dropped for a channel past MaxChannels; nil without metrics
	epoch     int64
	nextID    decimalCounter     // "<epoch>-<seq>", the event ID of seq, counted with it
	published prometheus.Counter // nil without metrics
	fan       *fanout
	now       func() time.Time
	arch      Archive // nil: the history is in memory only

	// mu orders publishing: a record gets its seq, enters its channel's
	// history and reaches the subscribers under mu, and Subscribe snapshots
	// the history and registers under mu, so a new subscriber sees every
	// record exactly once, from the history or live.
	mu       sync.Mutex
	seq      uint64
	batch    []Record     // PublishBatch's records, between history and delivery
	batchIn  []batchInput // PublishBatch's records as handed over
	channels map[string]*memChannel
	bytes    int64     // history bytes over all channels
	swept    time.Time // when forgotten channels were last looked for
	// forgotten is the last seq evicted from any channel since forgotten: a
	// resume from before it may have missed records of such a channel.
	forgotten uint64
	closed    bool
}

// ErrTooManyChannels is returned by Publish for a record of a new channel
// when the hub already knows MemoryConfig.MaxChannels channels.
var ErrTooManyChannels = errors.New("publish: too many channels")

// sweepEvery is how often Publish looks for channels to forget.
const sweepEvery = time.Minute

var _ Bus = (*Memory)(nil)

// NewMemory returns an empty hub whose epoch is the current time.
func NewMemory(cfg MemoryConfig) *Memory {
	m := &Memory{
		history:  max(cfg.History, 0),
		maxBytes: max(cfg.HistoryBytes, 0),
		maxChans: max(cfg.MaxChannels, 0),
		ttl:      max(cfg.ChannelTTL, 0),
		epoch:    startEpoch(cfg.Archive, time.Now()),
		arch:     cfg.Archive,
		fan:      newFanoutBudget(cfg.Metrics, cfg.QueueBudget),
		now:      time.Now,
		channels: make(map[string]*memChannel),
	}
	m.nextID = newDecimalCounter(strconv.FormatInt(m.epoch, 10)+"-", m.seq)
	if cfg.Metrics != nil {
		m.published = cfg.Metrics.Published
		m.overCap = cfg.Metrics.Dropped.WithLabelValues(metrics.DropMaxChannels)
	}
	return m
}

// entry is one record of a channel's history with its seq.
type entry struct {
	seq uint64
	rec Record
}

// entryOverhead is what a kept record costs beyond its JSON: the entry, the
// record's ID string and slice headers, roughly.
const entryOverhead = 96

// size is what e counts against the history's byte bound.
func (e *entry) size() int64 { return int64(e.rec.Size()+len(e.rec.ID)) + entryOverhead }

// memChannel is one channel's history and statistics.
type memChannel struct {
	name     string
	ring     []entry // a circular buffer of n entries from head; grows up to the history size
	head     int
	n        int
	bytes    int64  // size of the kept entries
	evicted  uint64 // seq of the last record pushed out of ring, 0 if none
	count    uint64
	first    int64 // Unix second of the first record
	lastSeen time.Time
	rate     rateWindow
}

func (c *memChannel) len() int { return c.n }

// at returns the i-th oldest kept entry.
func (c *memChannel) at(i int) *entry {
	i += c.head
	if i >= len(c.ring) {
		i -= len(c.ring)
	}
	return &c.ring[i]
}

// add appends e, evicting the oldest entry beyond limit, and returns the
// change of the channel's bytes.
func (c *memChannel) add(e entry, limit int) int64 {
	if limit == 0 {
		c.evicted = e.seq
		return 0
	}
	var delta int64
	if c.n == limit {
		delta -= c.popOldest()
	}
	if c.n == len(c.ring) { // full below the limit: grow
		ring := make([]entry, min(max(2*len(c.ring), 16), limit))
		for i := range c.n {
			ring[i] = *c.at(i)
		}
		c.ring, c.head = ring, 0
	}
	*c.at(c.n) = e
	c.n++
	size := e.size()
	c.bytes += size
	return delta + size
}

// popOldest drops the oldest kept entry and returns its size.
func (c *memChannel) popOldest() int64 {
	e := &c.ring[c.head]
	size := e.size()
	c.evicted = e.seq
	*e = entry{}
	c.head++
	if c.head == len(c.ring) {
		c.head = 0
	}
	c.n--
	c.bytes -= size
	return size
}

// sweepLocked forgets the channels with no history left and no record for
// the TTL. m.mu is held.
func (m *Memory) sweepLocked(now time.Time) {
	m.swept = now
	for name, c := range m.channels {
		if c.n == 0 && now.Sub(c.lastSeen) >= m.ttl {
			m.forgotten = max(m.forgotten, c.evicted)
			delete(m.channels, name)
		}
	}
}

// trimLocked evicts the oldest records of the largest channels until the
// history is back under 15/16 of its byte bound: trimming a little more than
// needed makes the scan for the largest channels rare. m.mu is held.
func (m *Memory) trimLocked() {
	low := m.maxBytes - m.maxBytes/16
	for m.bytes > low {
		var first, second *memChannel
		for _, c := range m.channels {
			switch {
			case first == nil || c.bytes > first.bytes:
				first, second = c, first
			case second == nil || c.bytes > second.bytes:
				second = c
			}
		}
		if first == nil || first.n == 0 {
			return // cannot happen while bytes > 0
		}
		// The largest loses records until it is no larger than the next.
		for first.n > 0 && m.bytes > low && (second == nil || first.bytes >= second.bytes) {
			m.bytes -= first.popOldest()
		}
	}
}

// after returns the index of the first kept entry with seq > since.
func (c *memChannel) after(since uint64) int {
	return sort.Search(c.len(), func(i int) bool { return c.at(i).seq > since })
}

// rateSeconds is the window over which a channel's rate is measured.
const rateSeconds = 10

// rateWindow counts records per Unix second over the last rateSeconds.
type rateWindow struct {
	sec   [rateSeconds + 1]int64
	count [rateSeconds + 1]uint64
}

func (w *rateWindow) add(sec int64) {
	i := int(uint64(sec) % uint64(len(w.sec)))
	if w.sec[i] != sec {
		w.sec[i], w.count[i] = sec, 0
	}
	w.count[i]++
}

// perSecond is the mean rate over the complete seconds of the window before
// now (fewer when the channel is younger; the current second alone when it
// is younger than one second).
func (w *rateWindow) perSecond(now, first int64) float64 {
	span := min(int64(rateSeconds), now-first)
	if span < 1 {
		i := int(uint64(now) % uint64(len(w.sec)))
		if w.sec[i] == now {
			return float64(w.count[i])
		}
		return 0
	}
	var n uint64
	for i, s := range w.sec {
		if s < now && s >= now-span {
			n += w.count[i]
		}
	}
	return float64(n) / float64(span)
}

// Publish assigns the record the next event ID, keeps it in the channel's
// history and hands it to every matching subscriber without waiting for any.
// gelf must be a JSON object; it is copied, once, into the record's JSON.
func (m *Memory) Publish(_ context.Context, channel string, gelf []byte) error {
	if !isJSONObject(gelf) {
		return fmt.Errorf("publish to %q: record is not a JSON object", channel)
	}
	now := m.now()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	rec, err := m.publishLocked(now, channel, gelf)
	if err == nil {
		m.fan.deliver(rec)
	}
	m.mu.Unlock()
	if err == nil && m.published != nil {
		m.published.Inc()
	}
	return err
}

// PublishBatch publishes records, (channel, GELF object) pairs, in their
// order, as Publish would one by one, but under one lock and with one
// reading of the clock: ingest hands over what one read of a connection
// brought. A record that is not a JSON object, or one for a new channel past
// MaxChannels, is left out and reported in the returned error; the others
// are published. The records' bytes are read until PublishBatch returns,
// not only while they are handed over: the caller keeps them as they are
// until then.
//
// The records of a run of one channel share one allocation (see
// chunkRecords), so that a busy connection's records cost the allocator
// one call per read rather than one each.
func (m *Memory) PublishBatch(_ context.Context, records iter.Seq2[string, []byte]) error {
	now := m.now()
	var errs []error
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	in := m.batchIn[:0]
	for channel, gelf := range records {
		if !isJSONObject(gelf) {
			errs = append(errs, fmt.Errorf("publish to %q: record is not a JSON object", channel))
			continue
		}
		in = append(in, batchInput{channel: channel, rest: members(gelf)})
	}
	recs := m.batch[:0]
	for rest := in; len(rest) > 0; {
		channel := rest[0].channel
		n := 1
		for n < len(rest) && n < m.chunkRecords() && rest[n].channel == channel {
			n++
		}
		run := rest[:n]
		rest = rest[n:]
		c, err := m.channelLocked(now, channel)
		if err != nil {
			for range run {
				errs = append(errs, err)
			}
			continue
		}
		// Allocations of an eighth of what the channel holds at most,
		// each record carved from one with its capacity cut to its length.
		quoted, budget := quotedLen(channel), int(c.bytes/8)
		for len(run) > 0 {
			k, room := planChunk(run, len(m.nextID.text)+1, quoted, budget)
			chunk := make([]byte, 0, room)
			for _, r := range run[:k] {
				seq, id := m.nextSeqLocked()
				rec := eventRecordIn(chunk[len(chunk):len(chunk)], id, channel, r.rest)
				if len(rec.SSE) > 0 && &rec.SSE[0] == unsafe.SliceData(chunk[len(chunk):cap(chunk)]) {
					chunk = chunk[:len(chunk)+len(rec.SSE)] // built in place, as always
				}
				m.keepLocked(now, c, seq, rec)
				recs = append(recs, rec)
			}
			run = run[k:]
		}
	}
	published := len(recs)
	m.fan.deliverAll(recs)
	clear(recs) // hold no record past its history
	clear(in)   // nor the caller's buffers
	if cap(in) > maxKeptBatch {
		recs, in = nil, nil // one huge batch does not pin its scratch
	}
	m.batch, m.batchIn = recs[:0], in[:0]
	m.mu.Unlock()
	if m.published != nil && published > 0 {
		m.published.Add(float64(published))
	}
	return errors.Join(errs...)
}

// batchInput is a record of PublishBatch before it has its ID: its channel
// and the members of its GELF object.
type batchInput struct {
	channel string
	rest    []byte
}

// chunkRecords is how many records of one channel may share an allocation.
// A record kept in a channel's history keeps its whole allocation alive,
// and a channel loses its records oldest first: at most the first chunk of
// a channel's history is partly records already evicted. Chunks of an
// eighth of the history, and of an eighth of the bytes the channel holds
// (planChunk), keep that under an eighth of what the history holds (none
// shared when the history is under 16 records or the channel new).
func (m *Memory) chunkRecords() int {
	return max(1, min(m.history/8, maxChunkRecords))
}

// planChunk returns how many of run's first records share one allocation,
// and its size: as many as fit in budget bytes, one at least; IDs are at
// most idLen bytes and the channel quoted quoted bytes.
func planChunk(run []batchInput, idLen, quoted, budget int) (n, room int) {
	for n < len(run) {
		r := eventRoom(idLen, quoted, len(run[n].rest))
		if n > 0 && room+r > budget {
			break
		}
		room += r
		n++
	}
	return n, room
}

// maxChunkRecords bounds the records of one allocation whatever the history.
const maxChunkRecords = 128

// maxKeptBatch bounds the records PublishBatch's scratch keeps room for
// between calls (ingest hands over at most 128 at a time).
const maxKeptBatch = 1024

// publishLocked gives one record received at now its ID and keeps it in
// its channel's history; the caller delivers it before unlocking. m.mu is
// held; it counts a record refused for MaxChannels, not the published ones.
func (m *Memory) publishLocked(now time.Time, channel string, gelf []byte) (Record, error) {
	c, err := m.channelLocked(now, channel)
	if err != nil {
		return Record{}, err
	}
	seq, id := m.nextSeqLocked()
	rec := eventRecord(id, channel, members(gelf))
	m.keepLocked(now, c, seq, rec)
	return rec, nil
}

// channelLocked returns the channel named channel, made when new unless
// MaxChannels are in use (that refusal is counted). It first forgets the
// channels idle past the TTL when a sweep is due. m.mu is held.
func (m *Memory) channelLocked(now time.Time, channel string) (*memChannel, error) {
	if m.ttl > 0 && now.Sub(m.swept) >= min(sweepEvery, m.ttl) {
		m.sweepLocked(now)
	}
	c := m.channels[channel]
	if c == nil {
		if m.maxChans > 0 && len(m.channels) >= m.maxChans {
			if m.overCap != nil {
				m.overCap.Inc()
			}
			return nil, fmt.Errorf("publish to new channel %q: %w (%d)", channel, ErrTooManyChannels, m.maxChans)
		}
		c = &memChannel{name: channel, first: now.Unix()}
		m.channels[channel] = c
	}
	return c, nil
}

// nextSeqLocked takes the next seq and returns it with its event ID, valid
// until the next call. m.mu is held.
func (m *Memory) nextSeqLocked() (uint64, []byte) {
	m.seq++
	return m.seq, m.nextID.next()
}

// keepLocked archives rec, of seq received at now, and keeps it in c's
// history, within the byte bound. m.mu is held.
func (m *Memory) keepLocked(now time.Time, c *memChannel, seq uint64, rec Record) {
	if m.arch != nil {
		m.arch.Append(archive.Key{Epoch: m.epoch, Seq: seq}, now.UnixNano(), c.name, rec.JSON)
	}
	m.bytes += c.add(entry{seq: seq, rec: rec}, m.history)
	if m.maxBytes > 0 && m.bytes > m.maxBytes {
		m.trimLocked()
	}
	c.count++
	c.lastSeen = now
	c.rate.add(now.Unix())
}

// Subscribe starts a subscription to the channels matching pattern. With
// opts.Since it first delivers every kept record after that ID (an EventGap
// first when records after it are no longer kept, or the ID is malformed or
// from an earlier epoch); else with opts.Tail the last Tail records across
// the matched channels; then live records. History and live records join
// without a gap or a duplicate.
func (m *Memory) Subscribe(ctx context.Context, pattern string, opts SubscribeOptions) (Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("subscribe %q: %w", pattern, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var matched []*memChannel
	for _, c := range m.channels {
		if glob.MatchList(pattern, c.name) {
			matched = append(matched, c)
		}
	}
	if m.arch != nil && m.fromArchiveLocked(matched, opts) {
		return m.subscribeArchive(ctx, pattern, opts)
	}
	var backfill []Event
	switch {
	case opts.Since != "":
		backfill = m.sinceLocked(matched, opts.Since)
	case opts.Tail > 0:
		backfill = tail(matched, opts.Tail)
	}
	s, err := m.fan.subscribe(pattern, backfill, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// sinceLocked returns the kept records of matched after the ID since, in
// seq order, led by an EventGap when some are missing.
func (m *Memory) sinceLocked(matched []*memChannel, since string) []Event {
	epoch, seq, ok := parseID(since)
	from, gap := resumeFrom(position{ms: uint64(epoch), seq: seq}, ok && epoch == m.epoch, false)
	seq = from.seq
	if m.forgotten > seq {
		gap = true // a forgotten channel may have matched; say so rather than miss it
	}
	var evs []Event
	if gap {
		evs = append(evs, Event{Kind: EventGap})
	}
	var cur cursors
	var lost []string // channels whose records after since are no longer kept
	for _, c := range matched {
		if c.evicted > seq && !gap {
			lost = append(lost, c.name)
		}
		if i := c.after(seq); i < c.len() {
			cur.list = append(cur.list, cursor{c: c, i: i})
		}
	}
	if len(lost) > 0 {
		// Say which channels, so a view of several shows where each lost
		// records; past MaxDropChannels, that any may have.
		if len(lost) > MaxDropChannels {
			lost = nil
		}
		slices.Sort(lost)
		evs = append(evs, Event{Kind: EventGap, Channels: lost})
	}
	heap.Init(&cur)
	for cur.Len() > 0 {
		top := &cur.list[0]
		evs = append(evs, Event{Kind: EventRecord, Record: top.c.at(top.i).rec})
		top.i++
		if top.i == top.c.len() {
			heap.Pop(&cur)
		} else {
			heap.Fix(&cur, 0)
		}
	}
	return evs
}

// tail returns the last n kept records across matched, in seq order.
func tail(matched []*memChannel, n int) []Event {
	cur := cursors{desc: true}
	for _, c := range matched {
		if c.len() > 0 {
			cur.list = append(cur.list, cursor{c: c, i: c.len() - 1})
		}
	}
	heap.Init(&cur)
	var evs []Event
	for len(evs) < n && cur.Len() > 0 {
		top := &cur.list[0]
		evs = append(evs, Event{Kind: EventRecord, Record: top.c.at(top.i).rec})
		top.i--
		if top.i < 0 {
			heap.Pop(&cur)
		} else {
			heap.Fix(&cur, 0)
		}
	}
	slices.Reverse(evs)
	return evs
}

// cursor walks one channel's kept entries.
type cursor struct {
	c *memChannel
	i int
}

func (c cursor) seq() uint64 { return c.c.at(c.i).seq }

// cursors is a heap of cursors with the least seq on top, or the greatest
// when desc: a k-way merge of the channels' histories.
type cursors struct {
	list []cursor
	desc bool
}

func (h *cursors) Len() int      { return len(h.list) }
func (h *cursors) Swap(i, j int) { h.list[i], h.list[j] = h.list[j], h.list[i] }
func (h *cursors) Less(i, j int) bool {
	if h.desc {
		return h.list[i].seq() > h.list[j].seq()
	}
	return h.list[i].seq() < h.list[j].seq()
}
func (h *cursors) Push(x any) { h.list = append(h.list, x.(cursor)) }
func (h *cursors) Pop() any {
	last := h.list[len(h.list)-1]
	h.list = h.list[:len(h.list)-1]
	return last
}

// Channels lists the channels published to since the hub started, sorted by
// name, with their rate over the last complete seconds (up to 10).
func (m *Memory) Channels(ctx context.Context) ([]ChannelInfo, error) {
	now := m.now().Unix()
	m.mu.Lock()
	infos := make([]ChannelInfo, 0, len(m.channels))
	for _, c := range m.channels {
		infos = append(infos, ChannelInfo{
			Name:     c.name,
			Count:    c.count,
			LastSeen: c.lastSeen,
			Rate:     c.rate.perSecond(now, c.first),
		})
	}
	m.mu.Unlock()
	slices.SortFunc(infos, func(a, b ChannelInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// Health returns nil, or with an archive why it does not store records.
func (m *Memory) Health(context.Context) error {
	if m.arch != nil {
		return m.arch.Health()
	}
	return nil
}

// Close stops the hub: Publish and Subscribe fail with ErrClosed, and every
// subscription hands out what it has queued, then ends with ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.fan.close()
	return nil
}
