package stream

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/logviewer/logviewer/publish"
)

// sink is one client's wire format. Its methods append to the client's
// write buffer; flush sends what was appended, bounded by the server's write timeout.
type sink interface {
	record(rec *publish.Record) error
	dropped(n uint64, byChannel map[string]uint64) error
	gap(channels []string) error
	// heartbeat keeps an idle stream alive (and finds dead peers).
	heartbeat() error
	flush() error
	// idle says nothing is pending and the client waits for records: a
	// good time to give back buffers.
	idle()
}

// pumpStats are what one client was sent.
type pumpStats struct {
	records uint64
	dropped uint64
}

// errStopping ends a pump whose server is shutting down, after it wrote
// everything its subscription held.
var errStopping = errors.New("server stopping")

// idleAfter is how long a client waits for records before its batch
// buffers are given back: steady traffic keeps them, an idle client costs
// little.
const idleAfter = time.Second

// firstBatch is the batch buffer a client starts with; it doubles, up to
// batchSize, each time a batch fills it.
const firstBatch = 16

// errSlow ends a pump whose client kept losing records (its queue full) for
// longer than the server allows.
var errSlow = errors.New("slow client: records lost for too long")

// pumpConfig are the timings of a client's pump.
type pumpConfig struct {
	heartbeat time.Duration // keep-alive interval of an idle stream
	slowAfter time.Duration // how long a client may keep losing records
	// pace returns the least time between two flushes to this client:
	// records that come sooner wait and leave together. Nil: no pacing.
	pace func() time.Duration
	// idleAfter is how long a client waits before its batch buffers are
	// given back; zero means the constant idleAfter.
	idleAfter time.Duration
	// done, when set, is an ended context shared by the server's pumps.
	done context.Context
}

// pump moves events from sub to out until ctx (the client's) ends, the
// subscription ends, a write fails, or stop (the server's) ends; it returns
// why. It is a pumper run on the calling goroutine that never parks.
func pump(ctx, stop context.Context, sub publish.Subscription, out sink, cfg pumpConfig, st *pumpStats) error {
	return newPumper(ctx, stop, sub, out, cfg, st).run()
}

// pumper is one client's pump. Every Next call takes all ready events (up
// to the batch buffer's size); they are written in one batch and flushed
// once, at most once per pace: records that follow a flush closely wait for
// the rest of it and leave together, so a busy stream costs one write per
// pace instead of one per record. A record after a quiet spell leaves at
// once. On stop the events already queued are written and errStopping is
// returned. A client that loses records in every batch for longer than
// slowAfter is cut off with errSlow.
//
// A pumper started with start parks when it would wait for events and
// has sent no records for idleAfter (or none yet), when its subscription
// is a publish.ReadyNotifier: no goroutine waits for it then. It resumes
// on a goroutine of its own at the first of: events ready, the heartbeat
// due, ctx ending (which must end when stop does).
type pumper struct {
	ctx, stop context.Context
	sub       publish.Subscription
	ready     publish.ReadyNotifier // nil: the pump waits in Next, never parks
	out       sink
	cfg       pumpConfig
	st        *pumpStats
	// done is an already cancelled context: Next with it hands out the
	// events that are ready and returns at once when there are none.
	done context.Context

	buf         []publish.Event // made when records come, given back while idle
	lastWrite   time.Time
	lastFlush   time.Time
	paceTimer   *time.Timer
	losingSince time.Time   // when the current run of batches with losses began
	end         func(error) // what start was given

	// Parking, for a pumper run by start.
	pmu         sync.Mutex
	parked      bool        // no goroutine runs the pump; a wake-up resumes it
	timer       *time.Timer // wakes it for the heartbeat or to give back buffers
	stopCtxWake func() bool // cancels the wake-up on ctx's end
	onReady     func()      // p.wakeAsync, made once
}

// newPumper returns the pump of one client. cfg.done, when set, is an
// ended context the server's pumps share.
func newPumper(ctx, stop context.Context, sub publish.Subscription, out sink, cfg pumpConfig, st *pumpStats) *pumper {
	if cfg.idleAfter <= 0 {
		cfg.idleAfter = idleAfter
	}
	done := cfg.done
	if done == nil {
		c, cancel := context.WithCancel(context.Background())
		cancel()
		done = c
	}
	return &pumper{ctx: ctx, stop: stop, sub: sub, out: out, cfg: cfg, st: st, done: done, lastWrite: time.Now()}
}

// readyNotifier returns what tells when sub has events, or nil.
func readyNotifier(sub publish.Subscription) publish.ReadyNotifier {
	if f, ok := sub.(*filteredSubscription); ok {
		sub = f.Subscription
	}
	r, _ := sub.(publish.ReadyNotifier)
	return r
}

// run pumps on the calling goroutine until the stream ends, and returns why.
func (p *pumper) run() error {
	_, err := p.loop(false)
	return err
}

// start pumps on the calling goroutine, parking when idle where the
// subscription allows (see pumper), and calls end once the stream has
// ended, with why, on whichever goroutine ends it. start returns when the
// stream ends or parks: the caller must not touch p or out afterwards.
func (p *pumper) start(end func(error)) {
	p.end = end
	p.ready = readyNotifier(p.sub)
	p.resume()
}

// resume runs the pump until it parks or the stream ends.
func (p *pumper) resume() {
	if parked, err := p.loop(p.ready != nil); !parked {
		p.release()
		p.end(err)
	}
}

// loop is the pump. With canPark it returns parked true (and no error)
// once it has parked; then another goroutine resumes it.
func (p *pumper) loop(canPark bool) (parked bool, err error) {
	for {
		if p.stop.Err() != nil {
			return false, drain(p.done, p.sub, p.out, p.buf, p.st)
		}
		// Take what is ready without waiting: under load this is every
		// call, and it costs no timer. An idle client has no batch buffer:
		// one is made when something comes.
		var evs []publish.Event
		var err error
		if cap(p.buf) == 0 {
			evs, err = p.sub.Next(p.done, nil)
			if len(evs) > 0 {
				p.buf = make([]publish.Event, 0, firstBatch)
				evs, _ = p.sub.Next(p.done, append(p.buf, evs...))
			}
		} else {
			evs, err = p.sub.Next(p.done, p.buf[:0])
		}
		if len(evs) == 0 {
			if errors.Is(err, publish.ErrClosed) {
				return false, err
			}
			wait := p.cfg.heartbeat - time.Since(p.lastWrite)
			if wait <= 0 {
				if err := p.out.heartbeat(); err != nil {
					return false, err
				}
				if err := p.out.flush(); err != nil {
					return false, err
				}
				p.lastWrite = time.Now()
				continue
			}
			// Nothing to send. Quiet for a while: wait without holding the
			// batch buffers; else wake when it has been, to give them back.
			quiet := time.Since(p.lastWrite)
			idle := quiet >= p.cfg.idleAfter
			if idle && cap(p.buf) > 0 {
				p.out.idle()
				p.buf = nil
			} else if !idle && cap(p.buf) > 0 {
				wait = min(wait, p.cfg.idleAfter-quiet)
			}
			// Park when idle, or before the first records: a stream that
			// had records a moment ago waits on its goroutine, as more are
			// likely soon, and costs no goroutine start per batch.
			if canPark && (idle || p.lastFlush.IsZero()) {
				if p.ctx.Err() != nil {
					if p.stop.Err() != nil {
						return false, drain(p.done, p.sub, p.out, p.buf, p.st)
					}
					return false, p.ctx.Err() // the peer went away
				}
				if p.park(wait) {
					return true, nil
				}
				continue // events came meanwhile
			}
			wctx, cancel := context.WithTimeout(p.ctx, wait)
			evs, err = p.sub.Next(wctx, p.buf)
			cancel()
			if len(evs) == 0 {
				switch {
				case p.ctx.Err() != nil:
					if p.stop.Err() != nil {
						return false, drain(p.done, p.sub, p.out, p.buf, p.st)
					}
					return false, p.ctx.Err()
				case errors.Is(err, context.DeadlineExceeded):
					continue // heartbeat due
				case err != nil:
					return false, err
				}
				continue
			}
		}
		if err := p.send(evs); err != nil {
			return false, err
		}
	}
}

// send writes and flushes a batch, after the rest of the pace, and checks
// the client keeps up.
func (p *pumper) send(evs []publish.Event) error {
	if p.cfg.pace != nil && len(evs) < cap(evs) {
		// Flushed a moment ago: let the records of the rest of the
		// pace join this batch.
		if rest := p.cfg.pace() - time.Since(p.lastFlush); rest > 0 {
			if p.paceTimer == nil {
				p.paceTimer = time.NewTimer(rest)
			} else {
				p.paceTimer.Reset(rest)
			}
			select {
			case <-p.paceTimer.C:
			case <-p.ctx.Done():
				p.paceTimer.Stop()
			case <-p.stop.Done():
				p.paceTimer.Stop()
			}
			evs, _ = p.sub.Next(p.done, evs)
		}
	}
	full := len(evs) == cap(evs)
	lost := p.st.dropped
	if err := write(p.out, evs, p.st); err != nil {
		return err
	}
	if err := p.out.flush(); err != nil {
		return err
	}
	p.lastWrite = time.Now()
	p.lastFlush = p.lastWrite
	if full && cap(p.buf) < batchSize {
		p.buf = make([]publish.Event, 0, min(2*cap(p.buf), batchSize))
	}
	switch {
	case p.st.dropped == lost:
		p.losingSince = time.Time{}
	case p.losingSince.IsZero():
		p.losingSince = p.lastWrite
	case p.lastWrite.Sub(p.losingSince) > p.cfg.slowAfter:
		return errSlow
	}
	return nil
}

// park arranges for the pump to resume, on a goroutine of its own, at the
// first of: events ready, wait passed (the heartbeat due), ctx ending. It
// returns false, arranging nothing, when events are ready already or ctx
// has ended. The timer and the wake-up on ctx are made by the first park
// and kept: a client that parks often costs no garbage for it.
func (p *pumper) park(wait time.Duration) bool {
	p.pmu.Lock() // until all is arranged: a wake-up waits for it
	defer p.pmu.Unlock()
	if p.ctx.Err() != nil {
		return false // its wake-up may have come and gone
	}
	if p.onReady == nil {
		p.onReady = p.wakeAsync
	}
	if !p.ready.NotifyReady(p.onReady) {
		return false
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(wait, p.wake)
	} else {
		p.timer.Reset(wait)
	}
	if p.stopCtxWake == nil {
		p.stopCtxWake = context.AfterFunc(p.ctx, p.wake)
	}
	p.parked = true
	return true
}

// unpark ends a parked spell and cancels its wake-ups. It reports whether
// the pump was parked: only then may the caller resume it. A wake-up that
// comes late finds the pump running (and does nothing) or parked anew (and
// resumes it for nothing: the pump parks again).
func (p *pumper) unpark() bool {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	if !p.parked {
		return false
	}
	p.parked = false
	p.ready.StopNotify()
	p.timer.Stop()
	return true
}

// wake resumes a parked pump on the calling goroutine (a timer's or a
// context's own).
func (p *pumper) wake() {
	if p.unpark() {
		p.resume()
	}
}

// wakeAsync resumes a parked pump on a new goroutine: it runs on a
// publisher's.
func (p *pumper) wakeAsync() {
	if p.unpark() {
		go p.resume()
	}
}

// release cancels the wake-ups of an ended stream.
func (p *pumper) release() {
	if p.stopCtxWake != nil {
		p.stopCtxWake()
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.ready != nil {
		p.ready.StopNotify()
	}
}

// drain writes the events sub holds now, without waiting for more, and
// returns errStopping (or the write error). It takes at most one queue's
// worth, so records still flowing in cannot hold a shutdown up.
func drain(done context.Context, sub publish.Subscription, out sink, buf []publish.Event, st *pumpStats) error {
	if cap(buf) < batchSize {
		buf = make([]publish.Event, 0, batchSize)
	}
	for range queueSize/batchSize + 1 {
		evs, _ := sub.Next(done, buf[:0])
		if len(evs) == 0 {
			break
		}
		if err := write(out, evs, st); err != nil {
			return err
		}
	}
	if err := out.flush(); err != nil {
		return err
	}
	return errStopping
}

// write appends a batch of events to out and clears the batch so the
// records' JSON can be collected once the client has it.
func write(out sink, evs []publish.Event, st *pumpStats) error {
	var err error
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case publish.EventRecord:
			err = out.record(&ev.Record)
			st.records++
		case publish.EventDropped:
			err = out.dropped(ev.Dropped, ev.ByChannel)
			st.dropped += ev.Dropped
		case publish.EventGap:
			err = out.gap(ev.Channels)
		}
		*ev = publish.Event{}
		if err != nil {
			return err
		}
	}
	return nil
}

// appendGap appends the gap notice {"gap":true}, with "channels":[...]
// when the bus knows which lost records.
func appendGap(b []byte, channels []string) []byte {
	b = append(b, `{"gap":true`...)
	if len(channels) > 0 {
		b = append(b, `,"channels":[`...)
		for i, ch := range channels {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, ch) // channel names are plain ASCII: valid JSON strings
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendDropped appends the dropped notice {"dropped":N,"channels":{...}}:
// how many records a client lost, and of which channels ("" for the
// channels past the ones named).
func appendDropped(b []byte, n uint64, byChannel map[string]uint64) []byte {
	b = append(b, `{"dropped":`...)
	b = strconv.AppendUint(b, n, 10)
	if len(byChannel) > 0 {
		names := make([]string, 0, len(byChannel))
		for ch := range byChannel {
			names = append(names, ch)
		}
		slices.Sort(names)
		b = append(b, `,"channels":{`...)
		for i, ch := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, ch) // channel names are plain ASCII: valid JSON strings
			b = append(b, ':')
			b = strconv.AppendUint(b, byChannel[ch], 10)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}
