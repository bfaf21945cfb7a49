package stream

import (
	"context"
	"errors"
	"slices"
	"strconv"
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
}

// pump moves events from sub to out until ctx (the client's) ends, the
// subscription ends, a write fails, or stop (the server's) ends. Every
// Next call takes all ready events (up to the batch buffer's size); they are
// written in one batch and flushed once, at most once per pace: records
// that follow a flush closely wait for the rest of it and leave together, so
// a busy stream costs one write per pace instead of one per record. A record
// after a quiet spell leaves at once. On stop the events already queued are
// written and errStopping is returned. A client that loses records in every
// batch for longer than slowAfter is cut off with errSlow.
func pump(ctx, stop context.Context, sub publish.Subscription, out sink, cfg pumpConfig, st *pumpStats) error {
	var buf []publish.Event // made when records come, given back while idle
	// done is an already cancelled context: Next with it hands out the
	// events that are ready and returns at once when there are none.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	lastWrite := time.Now()
	var lastFlush time.Time
	var paceTimer *time.Timer
	var losingSince time.Time // when the current run of batches with losses began
	for {
		if stop.Err() != nil {
			return drain(done, sub, out, buf, st)
		}
		if cap(buf) == 0 {
			buf = make([]publish.Event, 0, firstBatch)
		}
		// Take what is ready without waiting: under load this is every
		// call, and it costs no timer.
		evs, err := sub.Next(done, buf[:0])
		if len(evs) == 0 {
			if errors.Is(err, publish.ErrClosed) {
				return err
			}
			wait := cfg.heartbeat - time.Since(lastWrite)
			if wait <= 0 {
				if err := out.heartbeat(); err != nil {
					return err
				}
				if err := out.flush(); err != nil {
					return err
				}
				lastWrite = time.Now()
				continue
			}
			// Nothing to send. Quiet for a while: wait without holding the
			// batch buffers; else wake when it has been, to give them back.
			if quiet := time.Since(lastWrite); quiet >= idleAfter {
				if cap(buf) > 0 {
					out.idle()
					buf = nil
				}
			} else if cap(buf) > 0 {
				wait = min(wait, idleAfter-quiet)
			}
			wctx, cancel := context.WithTimeout(ctx, wait)
			evs, err = sub.Next(wctx, buf)
			cancel()
			if len(evs) == 0 {
				switch {
				case ctx.Err() != nil:
					if stop.Err() != nil {
						return drain(done, sub, out, buf, st)
					}
					return ctx.Err()
				case errors.Is(err, context.DeadlineExceeded):
					continue // heartbeat due
				case err != nil:
					return err
				}
				continue
			}
		}
		if cfg.pace != nil && len(evs) < cap(evs) {
			// Flushed a moment ago: let the records of the rest of the
			// pace join this batch.
			if rest := cfg.pace() - time.Since(lastFlush); rest > 0 {
				if paceTimer == nil {
					paceTimer = time.NewTimer(rest)
				} else {
					paceTimer.Reset(rest)
				}
				select {
				case <-paceTimer.C:
				case <-ctx.Done():
					paceTimer.Stop()
				case <-stop.Done():
					paceTimer.Stop()
				}
				evs, _ = sub.Next(done, evs)
			}
		}
		full := len(evs) == cap(evs)
		lost := st.dropped
		if err := write(out, evs, st); err != nil {
			return err
		}
		if err := out.flush(); err != nil {
			return err
		}
		lastWrite = time.Now()
		lastFlush = lastWrite
		if full && cap(buf) < batchSize {
			buf = make([]publish.Event, 0, min(2*cap(buf), batchSize))
		}
		switch {
		case st.dropped == lost:
			losingSince = time.Time{}
		case losingSince.IsZero():
			losingSince = lastWrite
		case lastWrite.Sub(losingSince) > cfg.slowAfter:
			return errSlow
		}
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
