package publish

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/logviewer/logviewer/internal/glob"
	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// fanout is the subscriber side shared by both buses: the set of live
// subscriptions with their glob patterns, and one bounded queue per
// subscription. A bus hands every record it receives to deliver, once; the
// record's JSON is shared, never copied per subscriber.
//
// Delivery never blocks the caller: each subscriber has its own queue (a ring
// of at most queueSize records under the subscriber's own mutex, plus a 1-slot
// notify channel). When the queue is full the OLDEST queued record is dropped
// and counted (metrics.Dropped{reason=slow_subscriber}); the subscriber then
// gets one EventDropped{Dropped: n} before its next records, n covering every
// record lost since the previous notice. One slow subscriber never delays a
// publisher or another subscriber.
//
// The list of subscribers matching a channel is cached per channel name and
// updated on subscribe and unsubscribe, so deliver does no glob matching per
// record once a channel has been seen.
//
// # History then live without a gap
//
// A subscription that starts with history (tail or resume) must neither miss
// a record published while the history is read nor get one twice. The rule
// for both buses: register the subscriber (so live records start queueing)
// BEFORE the history is read, and drop the live records already in it.
//
// Memory hub: the hub holds one mutex while it assigns a record's ID, appends
// it to the history and calls deliver. Subscribe takes the same mutex, copies
// the history it needs into backfill and calls subscribe before unlocking.
// Every record is thus either in the backfill or delivered live, never both,
// and no filtering is needed.
//
// Redis bus (no lock spans Redis): call subscribePending, which registers the
// subscriber in a pending state (live records queue but Next waits); make sure
// the PSUBSCRIBE covering it is active; then read the history (XRANGE); then
// call start(backfill, skip) where skip(rec) reports whether rec is already in
// the history, i.e. rec.ID <= the last history ID read for rec.Channel
// (compare stream IDs numerically as <ms>-<n>, not as strings). start removes
// the queued duplicates and keeps applying skip to every later live record,
// because a record read by XRANGE can still be in flight on the pub/sub
// connection. The publisher must XADD before it PUBLISHes (or both in one
// MULTI/script) so a live record can never be missing from a history read
// that began after its notification. Drops while pending (QueueSize live
// records arriving during the history read) are counted even if the dropped
// record was in the history: the client may be told of a loss that did not
// happen, never handed a silent hole.
type fanout struct {
	dropped prometheus.Counter // nil without metrics
	// budget bounds the bytes queued for all subscribers together (0: no
	// bound): past it, a subscriber holding more than its share of it
	// loses its oldest records first.
	budget  int64
	queued  atomic.Int64 // bytes queued over all subscribers
	subsLen atomic.Int64 // len(subs), read without the lock

	mu        sync.RWMutex
	subs      map[*subscriber]struct{}
	byChannel map[string][]*subscriber // cache: channel -> matching subscribers (copy-on-write slices)
	closed    bool
}

// maxCachedChannels bounds the per-channel cache; past it the cache restarts.
const maxCachedChannels = 1 << 14

// newFanoutBudget is newFanout with a budget of bytes queued over all
// subscribers (0: none).
func newFanoutBudget(m *metrics.Metrics, budget int64) *fanout {
	f := newFanout(m)
	f.budget = max(budget, 0)
	return f
}

// newFanout returns an empty fanout counting drops into m (m may be nil).
func newFanout(m *metrics.Metrics) *fanout {
	f := &fanout{
		subs:      make(map[*subscriber]struct{}),
		byChannel: make(map[string][]*subscriber),
	}
	if m != nil {
		f.dropped = m.Dropped.WithLabelValues(metrics.DropSlowSubscriber)
	}
	return f
}

// deliver hands rec to every subscriber whose pattern matches rec.Channel. It
// never blocks on a subscriber. Calls for one channel must come in ID order
// (the memory hub calls it under its publish lock; the Redis bus from its one
// pub/sub reader).
func (f *fanout) deliver(rec Record) {
	f.deliverAll(unsafe.Slice(&rec, 1))
}

// deliverAll is deliver for each record of recs, in order. Each run of
// records of one channel reaches a subscriber under one lock and one
// wake-up, so that a batch costs a subscriber about as much as a record.
func (f *fanout) deliverAll(recs []Record) {
	var now lazyClock // read once for all the subscribers, and only if one needs it
	for len(recs) > 0 {
		channel := recs[0].Channel
		n := 1
		for n < len(recs) && recs[n].Channel == channel {
			n++
		}
		run := recs[:n]
		recs = recs[n:]
		f.mu.RLock()
		subs, ok := f.byChannel[channel]
		f.mu.RUnlock()
		if !ok {
			subs = f.match(channel)
		}
		for _, s := range subs {
			s.push(run, &now)
		}
	}
}

// match computes and caches the subscribers of channel.
func (f *fanout) match(channel string) []*subscriber {
	f.mu.Lock()
	defer f.mu.Unlock()
	if subs, ok := f.byChannel[channel]; ok {
		return subs
	}
	var subs []*subscriber
	for s := range f.subs {
		if glob.MatchList(s.pattern, channel) {
			subs = append(subs, s)
		}
	}
	if f.closed {
		return nil
	}
	if len(f.byChannel) >= maxCachedChannels {
		clear(f.byChannel)
	}
	f.byChannel[channel] = subs
	return subs
}

// subscribe registers a subscriber for pattern that delivers backfill first,
// in full, then the live records delivered from now on. queueSize bounds the
// live queue (<= 0: DefaultQueueSize). It fails with ErrClosed after close.
func (f *fanout) subscribe(pattern string, backfill []Event, opts SubscribeOptions) (*subscriber, error) {
	s := f.newSubscriber(pattern, opts)
	s.backfill, s.backfillHeld = f.holdBackfill(backfill)
	if err := f.add(s); err != nil {
		f.queued.Add(-s.backfillHeld)
		return nil, err
	}
	return s, nil
}

// backfillEventSize is what one event of a backfill taken from the
// in-memory history costs: the event itself, its record's JSON being the
// history's own.
const backfillEventSize = int64(unsafe.Sizeof(Event{}))

// holdBackfill reserves the queue budget for a backfill from the in-memory
// history until it is taken (a tail of 100,000 records is a few MiB of
// events per client). When the budget is short it keeps the notices at its
// head, then a gap notice and the newest records that fit. It returns the
// backfill and the bytes it holds.
func (f *fanout) holdBackfill(evs []Event) ([]Event, int64) {
	return f.holdBackfillSized(evs, func(*Event) int64 { return backfillEventSize })
}

// holdOwnedBackfill is holdBackfill for a backfill whose records were read
// for this subscriber alone (from Redis): their JSON counts too.
func (f *fanout) holdOwnedBackfill(evs []Event) ([]Event, int64) {
	return f.holdBackfillSized(evs, func(ev *Event) int64 {
		return backfillEventSize + int64(len(ev.Record.JSON)) + entryOverhead
	})
}

// holdBackfillSized is holdBackfill with size telling what each event
// holds.
func (f *fanout) holdBackfillSized(evs []Event, size func(*Event) int64) ([]Event, int64) {
	if len(evs) == 0 {
		return evs, 0
	}
	var want int64
	for i := range evs {
		want += size(&evs[i])
	}
	got := f.reserve(want)
	if got == want {
		return evs, got
	}
	head, gap := 0, false
	var held int64
	for head < len(evs) && evs[head].Kind != EventRecord {
		gap = gap || evs[head].Kind == EventGap
		held += size(&evs[head])
		head++
	}
	gapEvent := Event{Kind: EventGap}
	if !gap {
		held += size(&gapEvent)
	}
	// The newest records that fit in what is left.
	records := evs[head:]
	first := len(records)
	for first > 0 {
		n := size(&records[first-1])
		if held+n > got {
			break
		}
		held += n
		first--
	}
	kept := make([]Event, 0, head+1+len(records)-first)
	kept = append(kept, evs[:head]...)
	if !gap {
		kept = append(kept, gapEvent)
	}
	kept = append(kept, records[first:]...)
	f.queued.Add(held - got) // at most the notices past what was reserved
	return kept, held
}

// subscribePending registers a subscriber for pattern whose live records
// queue up but are not handed out until start is called (see the fanout doc:
// the Redis bus reads its history in between). It fails with ErrClosed after
// close.
func (f *fanout) subscribePending(pattern string, opts SubscribeOptions) (*subscriber, error) {
	s := f.newSubscriber(pattern, opts)
	s.pending = true
	if err := f.add(s); err != nil {
		return nil, err
	}
	return s, nil
}

func (f *fanout) newSubscriber(pattern string, opts SubscribeOptions) *subscriber {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	s := &subscriber{
		f:         f,
		pattern:   pattern,
		dropped:   f.dropped,
		limit:     opts.QueueSize,
		byteLimit: opts.QueueBytes,
		notify:    make(chan struct{}, 1),
	}
	s.lastTake.Store(time.Now().UnixNano())
	return s
}

func (f *fanout) add(s *subscriber) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.subs[s] = struct{}{}
	f.subsLen.Store(int64(len(f.subs)))
	for ch, subs := range f.byChannel {
		if glob.MatchList(s.pattern, ch) {
			f.byChannel[ch] = append(subs[:len(subs):len(subs)], s)
		}
	}
	return nil
}

func (f *fanout) remove(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; !ok {
		return
	}
	delete(f.subs, s)
	f.subsLen.Store(int64(len(f.subs)))
	for ch, subs := range f.byChannel {
		for i, x := range subs {
			if x == s {
				kept := make([]*subscriber, 0, len(subs)-1)
				kept = append(kept, subs[:i]...)
				f.byChannel[ch] = append(kept, subs[i+1:]...)
				break
			}
		}
	}
}

// markGap makes every subscriber receive an EventGap before its next record:
// for a bus that lost live records it cannot count (a Redis reconnect).
func (f *fanout) markGap() {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for s := range f.subs {
		s.mu.Lock()
		s.gap = true
		wake := s.wakeLocked()
		ready := s.takeReadyLocked()
		s.mu.Unlock()
		if wake {
			s.signal()
		}
		if ready != nil {
			ready()
		}
	}
}

// subscriberCount returns the number of registered subscribers.
func (f *fanout) subscriberCount() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.subs)
}

// close ends every subscription: each one's Next hands out what is already
// queued, then returns ErrClosed. Later subscribe calls fail with ErrClosed.
func (f *fanout) close() {
	f.mu.Lock()
	subs := f.subs
	f.subs = make(map[*subscriber]struct{})
	f.subsLen.Store(0)
	clear(f.byChannel)
	f.closed = true
	f.mu.Unlock()
	for s := range subs {
		s.mu.Lock()
		s.ended = true
		s.pending = false
		s.waiting = false
		ready := s.takeReadyLocked()
		s.mu.Unlock()
		s.signal()
		if ready != nil {
			ready()
		}
	}
}

// subscriber is one subscription of a fanout; it implements Subscription.
// Next is not safe for concurrent use; Close may be called from any goroutine.
type subscriber struct {
	f       *fanout
	pattern string
	dropped prometheus.Counter
	limit   int // most live records queued
	// byteLimit bounds the bytes of the live records queued; 0: none.
	byteLimit int64
	notify    chan struct{} // 1 slot: wakes a waiting Next

	mu       sync.Mutex
	pending  bool              // registered, but start not called yet
	backfill []Event           // handed out first, in full
	skip     func(Record) bool // live records to ignore (already in the backfill)
	ring     []Record          // live queue: n records from head, grown up to limit
	head, n  int
	bytes    int64        // queuedSize of the n records
	lastTake atomic.Int64 // Unix nanoseconds of the last Next that took records (or of the start)
	// stalled is set when the queue overflows and nothing was taken for
	// stallAfter; push then only counts stalledLost, until Next takes.
	stalled     atomic.Bool
	stalledLost atomic.Uint64
	stallCh     string            // the channel whose record overflowed the queue as it stalled
	lost        uint64            // records dropped since the last EventDropped
	lostBy      map[string]uint64 // lost, by channel (MaxDropChannels at most, the rest under "")
	gap         bool              // an EventGap is owed
	// backfillHeld is what the backfill holds of the fanout's queued
	// total (a backfill read from disk), given back once it is taken.
	backfillHeld int64
	waiting      bool // Next is blocked on notify
	closed       bool // Close was called: Next fails at once
	ended        bool // the bus closed: Next drains, then fails
	// onReady is what NotifyReady arranged to be called when events are
	// ready; nil when nothing is arranged.
	onReady func()
}

// start ends the pending state of a subscriber made by subscribePending:
// backfill is handed out first, then the queued and later live records for
// which skip (if not nil) returns false. skip runs with the subscriber's
// mutex held, on the goroutine calling deliver (or start): it must be quick
// and must not call back into the subscriber or the fanout.
func (s *subscriber) start(backfill []Event, skip func(Record) bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.backfill = backfill
	s.skip = skip
	if skip != nil && s.n > 0 {
		kept := 0
		for i := 0; i < s.n; i++ {
			rec := s.ring[s.index(i)]
			if !skip(rec) {
				s.ring[s.index(kept)] = rec
				kept++
			}
		}
		for i := kept; i < s.n; i++ {
			s.ring[s.index(i)] = Record{}
		}
		s.n = kept
	}
	s.pending = false
	wake := s.wakeLocked()
	ready := s.takeReadyLocked()
	s.mu.Unlock()
	if wake {
		s.signal()
	}
	if ready != nil {
		ready()
	}
}

// startHeld is start for a backfill whose records hold held bytes of the
// fanout's queued total (reserved by the caller): they are given back once
// the subscriber has taken the whole backfill, or closes.
func (s *subscriber) startHeld(backfill []Event, skip func(Record) bool, held int64) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.f.queued.Add(-held)
		return
	}
	s.backfillHeld = held
	s.mu.Unlock()
	s.start(backfill, skip)
}

// releaseBackfillLocked gives back the bytes the backfill held, once.
func (s *subscriber) releaseBackfillLocked() {
	if s.backfillHeld != 0 {
		s.f.queued.Add(-s.backfillHeld)
		s.backfillHeld = 0
	}
}

// reserve takes up to want bytes of the budget of bytes queued for all
// subscribers, for records held outside the queues (a backfill read from
// disk), and returns how many it took: want without a budget, none when
// the budget is spent. The caller gives them back with queued.Add.
func (f *fanout) reserve(want int64) int64 {
	for {
		q := f.queued.Load()
		got := want
		if f.budget > 0 {
			got = min(want, f.budget-q)
		}
		if got <= 0 {
			return 0
		}
		if f.queued.CompareAndSwap(q, q+got) {
			return got
		}
	}
}

// index maps a queue position to a ring slot.
func (s *subscriber) index(i int) int {
	i += s.head
	if i >= len(s.ring) {
		i -= len(s.ring)
	}
	return i
}

// queuedSize is what a queued record counts against the byte bounds.
func queuedSize(rec *Record) int64 { return int64(rec.Size()) + 64 }

// push queues live records, dropping the oldest first while the queue is
// full: by count, by its own bytes, or by its share of the fanout's budget.
// It takes the subscriber's lock and wakes its reader once for them all.
func (s *subscriber) push(recs []Record, now *lazyClock) {
	if s.stalled.Load() {
		// It stopped reading with its queue full: keep count, touch nothing.
		// Thousands of stuck clients then cost the publisher an atomic add
		// each instead of a locked drop-and-queue.
		s.stalledLost.Add(uint64(len(recs)))
		return
	}
	s.mu.Lock()
	if s.closed || s.ended {
		s.mu.Unlock()
		return
	}
	dropped := 0
	for i := range recs {
		rec := &recs[i]
		if s.stalled.Load() {
			s.stalledLost.Add(uint64(len(recs) - i))
			break
		}
		if !s.pending && s.skip != nil && s.skip(*rec) {
			continue
		}
		dropped += s.queueLocked(rec, now)
	}
	wake := s.wakeLocked()
	ready := s.takeReadyLocked()
	s.mu.Unlock()
	if dropped > 0 && s.dropped != nil {
		s.dropped.Add(float64(dropped))
	}
	if wake {
		s.signal()
	}
	if ready != nil {
		ready()
	}
}

// queueLocked queues rec, dropping the oldest records first as push says,
// and returns how many it dropped. Called with s.mu held.
func (s *subscriber) queueLocked(rec *Record, now *lazyClock) (dropped int) {
	size := queuedSize(rec)
	for s.n > 0 && (s.n >= s.limit || s.overBytesLocked(size, now)) {
		s.dropOldestLocked()
		dropped++
	}
	if dropped > 0 && now.unixNano()-s.lastTake.Load() > int64(stallAfter) {
		s.stalled.Store(true) // full and not reading: later records are only counted
		s.stallCh = rec.Channel
	}
	if s.n == len(s.ring) {
		s.grow()
	}
	s.ring[s.index(s.n)] = *rec
	s.n++
	s.bytes += size
	s.f.queued.Add(size)
	return dropped
}

// lazyClock reads the time once, when first asked: a record delivered to
// thousands of subscribers whose queues overflow costs one clock read, not
// one each, and one whose queues have room costs none.
type lazyClock struct{ ns int64 }

func (c *lazyClock) unixNano() int64 {
	if c.ns == 0 {
		c.ns = time.Now().UnixNano()
	}
	return c.ns
}

// overBytesLocked reports whether queueing size more bytes goes past the
// subscriber's own byte bound, or past the fanout's budget while this
// subscriber holds more than its share of it.
func (s *subscriber) overBytesLocked(size int64, now *lazyClock) bool {
	if s.byteLimit > 0 && s.bytes+size > s.byteLimit {
		return true
	}
	f := s.f
	if f.budget <= 0 || f.queued.Load()+size <= f.budget {
		return false
	}
	// Over the budget. A subscriber that stopped taking records pays
	// first: it keeps none past its share. One that is reading keeps a
	// backlog of its own (budget/64, up to its byte bound) however many
	// stalled ones there are, so a short pause of a healthy client does
	// not cost it records while thousands of stuck ones hold the budget.
	share := f.budget / max(f.subsLen.Load(), 1)
	if now.unixNano()-s.lastTake.Load() < int64(readingWithin) {
		share = max(share, f.budget/64)
		if s.byteLimit > 0 {
			share = min(share, s.byteLimit)
		}
	}
	return s.bytes+size > share
}

// readingWithin is how recently a subscriber must have taken records to
// count as reading when the queue budget is short.
const readingWithin = time.Second

// stallAfter is how long a subscriber may go without taking records while
// its queue overflows before it is taken for stalled: its queue is kept as
// it is and later records are only counted as lost until it reads again.
const stallAfter = 500 * time.Millisecond

// stallChannel is the channel the records lost while stalled are counted
// under: the subscription's own when it names one channel, else the one
// whose record overflowed the queue last (which channels they were is not
// kept, to keep a stalled push cheap). s.mu is held.
func (s *subscriber) stallChannel() string {
	if glob.HasMeta(s.pattern) || strings.Contains(s.pattern, ",") {
		return s.stallCh
	}
	return s.pattern
}

// dropOldestLocked drops the oldest queued record and counts it as lost.
func (s *subscriber) dropOldestLocked() {
	rec := s.takeOldestLocked()
	s.lost++
	if s.lostBy == nil {
		s.lostBy = make(map[string]uint64)
	}
	ch := rec.Channel
	if _, ok := s.lostBy[ch]; !ok && len(s.lostBy) >= MaxDropChannels {
		ch = ""
	}
	s.lostBy[ch]++
}

// takeOldestLocked removes the oldest queued record and returns it.
func (s *subscriber) takeOldestLocked() Record {
	rec := s.popLocked()
	s.f.queued.Add(-queuedSize(&rec))
	return rec
}

// popLocked removes the oldest queued record and returns it; the caller
// takes its size off the fanout's total.
func (s *subscriber) popLocked() Record {
	rec := s.ring[s.head]
	s.ring[s.head] = Record{}
	s.head++
	if s.head == len(s.ring) {
		s.head = 0
	}
	s.n--
	s.bytes -= queuedSize(&rec)
	return rec
}

// grow doubles the ring (at least 16, at most limit), keeping the order.
func (s *subscriber) grow() {
	size := max(16, 2*len(s.ring))
	size = min(size, s.limit)
	ring := make([]Record, size)
	for i := 0; i < s.n; i++ {
		ring[i] = s.ring[s.index(i)]
	}
	s.ring, s.head = ring, 0
}

// wakeLocked reports whether a blocked Next must be signalled, and clears
// the waiting flag if so. Called with s.mu held.
func (s *subscriber) wakeLocked() bool {
	if s.waiting && !s.pending {
		s.waiting = false
		return true
	}
	return false
}

// takeReadyLocked returns and clears what NotifyReady arranged, once the
// subscriber is no longer pending; the caller calls it after unlocking.
// Called with s.mu held.
func (s *subscriber) takeReadyLocked() func() {
	if s.pending || s.onReady == nil {
		return nil
	}
	f := s.onReady
	s.onReady = nil
	return f
}

// readyLocked reports whether Next would return at once. Called with s.mu
// held.
func (s *subscriber) readyLocked() bool {
	if s.closed || s.ended {
		return true
	}
	if s.pending {
		return false
	}
	return len(s.backfill) > 0 || s.gap || s.lost > 0 || s.n > 0 || s.stalled.Load()
}

// NotifyReady arranges for ready to be called once when Next would not
// wait (see publish.ReadyNotifier); it returns false when Next would not
// wait now.
func (s *subscriber) NotifyReady(ready func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readyLocked() {
		s.onReady = nil
		return false
	}
	s.onReady = ready
	return true
}

// StopNotify cancels what NotifyReady arranged.
func (s *subscriber) StopNotify() {
	s.mu.Lock()
	s.onReady = nil
	s.mu.Unlock()
}

func (s *subscriber) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Next waits until at least one event is ready, then appends all ready events
// (up to cap(buf)-len(buf), at least one) to buf: the backfill first, then a
// gap notice if owed, then a dropped notice if records were lost, then the
// queued live records oldest first. It returns ctx.Err() when ctx ends,
// ErrClosed at once after Close, and ErrClosed once the queue is empty after
// the bus closed.
func (s *subscriber) Next(ctx context.Context, buf []Event) ([]Event, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return buf, ErrClosed
		}
		if !s.pending {
			before := len(buf)
			buf = s.fillLocked(buf, max(1, cap(buf)-len(buf)))
			if len(buf) > before {
				s.mu.Unlock()
				return buf, nil
			}
			if s.ended {
				s.mu.Unlock()
				return buf, ErrClosed
			}
		}
		s.waiting = true
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-ctx.Done():
			s.mu.Lock()
			s.waiting = false
			s.mu.Unlock()
			return buf, ctx.Err()
		}
	}
}

// fillLocked appends up to room ready events to buf.
func (s *subscriber) fillLocked(buf []Event, room int) []Event {
	if s.n > 0 && room > 0 {
		s.lastTake.Store(time.Now().UnixNano())
	}
	if s.stalled.Load() && room > 0 {
		// Reading again: what was only counted while stalled is lost, and
		// said so before the records still queued.
		s.stalled.Store(false)
		if n := s.stalledLost.Swap(0); n > 0 {
			s.lost += n
			if s.lostBy == nil {
				s.lostBy = make(map[string]uint64)
			}
			s.lostBy[s.stallChannel()] += n
			if s.dropped != nil {
				s.dropped.Add(float64(n))
			}
		}
	}
	for room > 0 && len(s.backfill) > 0 {
		buf = append(buf, s.backfill[0])
		s.backfill[0] = Event{}
		s.backfill = s.backfill[1:]
		room--
	}
	if len(s.backfill) == 0 {
		s.backfill = nil
		if !s.pending {
			s.releaseBackfillLocked()
		}
	}
	if room > 0 && s.gap {
		buf = append(buf, Event{Kind: EventGap})
		s.gap = false
		room--
	}
	if room > 0 && s.lost > 0 {
		buf = append(buf, Event{Kind: EventDropped, Dropped: s.lost, ByChannel: s.lostBy})
		s.lost, s.lostBy = 0, nil
		room--
	}
	var taken int64
	for room > 0 && s.n > 0 {
		rec := s.popLocked()
		taken += queuedSize(&rec)
		buf = append(buf, Event{Kind: EventRecord, Record: rec})
		room--
	}
	if taken > 0 {
		// One update of the shared total per batch, not per record: the
		// publisher adds to it for every record and every subscriber.
		s.f.queued.Add(-taken)
	}
	return buf
}

// Close ends the subscription and unregisters it. It is idempotent.
func (s *subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if n := s.stalledLost.Swap(0); n > 0 && s.dropped != nil {
		s.dropped.Add(float64(n)) // lost while stalled, counted now
	}
	s.f.queued.Add(-s.bytes)
	s.releaseBackfillLocked()
	s.backfill, s.ring, s.head, s.n, s.bytes = nil, nil, 0, 0, 0
	ready := s.onReady
	s.onReady = nil
	s.mu.Unlock()
	s.f.remove(s)
	s.signal()
	if ready != nil {
		ready()
	}
	return nil
}
