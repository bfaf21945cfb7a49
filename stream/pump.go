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

// errSlow ends a pump whose client kept losing records (its queue full) for
// longer than the server allows.
var errSlow = errors.New("slow client: records lost for too long")

// pump moves events from sub to out until ctx (the client's) ends, the
// subscription ends, a write fails, or stop (the server's) ends. Every
// Next call takes all ready events (up to batchSize); they are written in
// one batch and flushed once. On stop the events already queued are written
// and errStopping is returned. A client that loses records in every batch for
// longer than slowAfter is cut off with errSlow.
func pump(ctx, stop context.Context, sub publish.Subscription, out sink, heartbeat, slowAfter time.Duration, st *pumpStats) error {
	var buf []publish.Event // made when records come, given back while idle
	// done is an already cancelled context: Next with it hands out the
	// events that are ready and returns at once when there are none.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	lastWrite := time.Now()
	var losingSince time.Time // when the current run of batches with losses began
	for {
		if stop.Err() != nil {
			return drain(done, sub, out, buf, st)
		}
		if cap(buf) == 0 {
			buf = make([]publish.Event, 0, batchSize)
		}
		// Take what is ready without waiting: under load this is every
		// call, and it costs no timer.
		evs, err := sub.Next(done, buf[:0])
		if len(evs) == 0 {
			if errors.Is(err, publish.ErrClosed) {
				return err
			}
			wait := heartbeat - time.Since(lastWrite)
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
		lost := st.dropped
		if err := write(out, evs, st); err != nil {
			return err
		}
		if err := out.flush(); err != nil {
			return err
		}
		lastWrite = time.Now()
		switch {
		case st.dropped == lost:
			losingSince = time.Time{}
		case losingSince.IsZero():
			losingSince = lastWrite
		case lastWrite.Sub(losingSince) > slowAfter:
			return errSlow
		}
	}
}

// drain writes the events sub holds now, without waiting for more, and
// returns errStopping (or the write error). It takes at most one queue's
// worth, so records still flowing in cannot hold a shutdown up.
func drain(done context.Context, sub publish.Subscription, out sink, buf []publish.Event, st *pumpStats) error {
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
