package publish

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/logviewer/logviewer/archive"
	"github.com/logviewer/logviewer/internal/glob"
)

// Archive is the history on disk behind the memory hub (--data-dir): the
// hub appends every record to it in publish order, under the lock that
// orders publishing, and reads from it the tails and resumes that reach
// past its in-memory history, which is then a cache of the archive's
// newest part. *archive.Archive implements it.
type Archive interface {
	// Append stores a record; it must not wait for the disk.
	Append(key archive.Key, t int64, channel string, js []byte)
	// First and Last are the oldest and newest keys kept (zero: none).
	First() archive.Key
	Last() archive.Key
	// Scan hands out the records selected, in key order or reversed.
	Scan(ctx context.Context, o archive.ScanOptions, fn func(*archive.Entry) bool) (archive.ScanResult, error)
	// Health is nil while records are stored, else why not.
	Health() error
}

// Bounds of a backfill read from the archive: a resume from further back
// gets a gap notice and the newest records within them.
const (
	maxArchiveBackfill      = 100_000
	maxArchiveBackfillBytes = 32 << 20
)

// startEpoch is the epoch of a hub starting now: its start in Unix
// milliseconds, and after every epoch in arch, so that event IDs keep
// increasing across restarts. A new epoch per start (rather than going on
// with the last seq on disk) never gives a record the ID of one that a
// kill -9 lost after a client had seen it.
func startEpoch(arch Archive, now time.Time) int64 {
	epoch := now.UnixMilli()
	if arch != nil {
		epoch = max(epoch, arch.Last().Epoch+1)
	}
	return epoch
}

// History returns the archive behind the hub; nil without one.
func (m *Memory) History() Archive { return m.arch }

// fromArchiveLocked reports whether the in-memory history cannot serve what
// opts ask of the matched channels exactly, while the archive can. m.mu is
// held.
func (m *Memory) fromArchiveLocked(matched []*memChannel, opts SubscribeOptions) bool {
	switch {
	case opts.Since != "":
		epoch, seq, ok := parseID(opts.Since)
		if !ok || epoch > m.epoch || (epoch == m.epoch && seq > m.seq) {
			return false // not an ID of ours: the memory path says gap
		}
		if epoch < m.epoch {
			return true // from an earlier life of the daemon
		}
		return m.lostAfterLocked(matched, seq)
	case opts.Tail > 0:
		evs := tail(matched, opts.Tail)
		var low uint64
		if len(evs) == opts.Tail {
			_, low, _ = parseID(evs[0].Record.ID)
		} else if first := m.arch.First(); !first.IsZero() && first.Epoch < m.epoch {
			return true // too few in memory, more from earlier lives on disk
		}
		return m.lostAfterLocked(matched, low)
	}
	return false
}

// lostAfterLocked reports whether a matched channel's in-memory history
// lost records after seq (evicted, or its channel forgotten).
func (m *Memory) lostAfterLocked(matched []*memChannel, seq uint64) bool {
	if m.forgotten > seq {
		return true
	}
	for _, c := range matched {
		if c.evicted > seq {
			return true
		}
	}
	return false
}

// subscribeArchive registers a subscriber whose live records queue while
// its backfill is read from the archive by another goroutine (m.mu is
// held, so the backfill ends exactly before the first live record).
func (m *Memory) subscribeArchive(ctx context.Context, pattern string, opts SubscribeOptions) (Subscription, error) {
	s, err := m.fan.subscribePending(pattern, opts)
	if err != nil {
		return nil, err
	}
	before := archive.Key{Epoch: m.epoch, Seq: m.seq + 1}
	go func() {
		// What is read from disk is held until the client has taken it:
		// it counts against the bytes queued for all clients
		// (--client-queue-bytes), so a restart that has every browser
		// resume at once cannot hold more than that. A backfill that
		// finds the budget spent gets fewer records (and a gap notice).
		room := m.fan.reserve(maxArchiveBackfillBytes)
		evs, size := archiveBackfill(ctx, m.arch, pattern, opts, before, room)
		m.fan.queued.Add(size - room) // give back what it did not use
		s.startHeld(evs, nil, size)
	}()
	return s, nil
}

// archiveBackfill reads from arch, newest first, the records of pattern
// before the key before: after opts.Since, or the last opts.Tail. It is
// led by an EventGap when a resume's records are not all there (deleted by
// retention, not stored, or more than the bounds). room bounds the bytes it
// holds (records' JSON plus entryOverhead each); size is what it holds.
func archiveBackfill(ctx context.Context, arch Archive, pattern string, opts SubscribeOptions, before archive.Key, room int64) (evs []Event, size int64) {
	o := archive.ScanOptions{Before: before, Desc: true, Match: func(ch string) bool { return glob.MatchList(pattern, ch) }}
	limit, gap := maxArchiveBackfill, false
	var since archive.Key
	if opts.Since != "" {
		k, err := archive.ParseKey(opts.Since)
		if err != nil {
			gap = true
		}
		since, o.After = k, k
	} else {
		limit = min(opts.Tail, limit)
	}
	res, err := arch.Scan(ctx, o, func(e *archive.Entry) bool {
		if e.Hole {
			gap = gap || opts.Since != ""
			return true
		}
		n := int64(len(e.JSON)) + entryOverhead
		if size+n > room {
			return false // past the bound: the resume gets a gap notice
		}
		evs = append(evs, Event{Kind: EventRecord, Record: Record{
			Channel: string(e.Channel), ID: e.Key.String(), JSON: bytes.Clone(e.JSON)}})
		size += n
		return len(evs) < limit
	})
	if opts.Since != "" {
		// Stopped before reaching the resume point, or records after it
		// are no longer kept (never stored, or deleted by retention, also
		// while the scan ran: First is read after it).
		// While the disk fails, the newest records are in memory only and
		// no hole frame marks them yet.
		if first := arch.First(); err != nil || !res.Done || first.IsZero() || since.Compare(first) < 0 || arch.Health() != nil {
			gap = true
		}
	}
	slices.Reverse(evs)
	if gap {
		evs = append([]Event{{Kind: EventGap}}, evs...)
	}
	return evs, size
}
