// Package archive keeps the published records on disk, in order, in segment
// files of bounded size: appended as they are published, fsynced every
// interval, cut at the first torn or corrupt frame when opened, deleted
// whole, oldest first, past a total size or an age, and scanned in key
// order either way with a sparse index per segment, so a resume by ID seeks
// rather than reads everything before it. It knows nothing of the bus or of
// HTTP.
//
// Append only buffers: a writer goroutine writes the buffers out (when 256
// KiB are buffered, at every fsync tick, before any scan) and fsyncs every
// tick, so publishing never waits for the disk.
//
// Crash safety: a record is in the file once its buffer is written out and
// on the disk once fsynced; a kill -9 loses at most the records appended
// since the last tick, a power loss at most those since the last fsync.
// Either way what was written before stays readable: each frame carries its
// length and a CRC-32C, and Open cuts a segment at its first bad frame.
package archive

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultSegmentBytes   = 64 << 20
	DefaultRetentionBytes = 1 << 30
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultFsync          = time.Second
	DefaultMaxScans       = 16
)

// writeBuf is how many bytes of frames are buffered before a write.
const writeBuf = 256 << 10

// maxQueued bounds the bytes waiting for the writer: past it the disk is
// too slow, and records are not stored (a hole) until it has caught up.
const maxQueued = 64 << 20

// errTooSlow is why records are not stored while the writer is behind.
var errTooSlow = errors.New("the disk is too slow: more than 64 MiB waiting to be written")

// retryEvery is how often writing is tried again after it failed.
const retryEvery = time.Second

// Config configures an Archive.
type Config struct {
	// Dir holds the segment files; it is created when missing.
	Dir string
	// SegmentBytes is the size past which a segment is closed and a new
	// one started; when 0, DefaultSegmentBytes or a sixteenth of
	// RetentionBytes (at least 1 MiB), whichever is less, so that retention
	// deletes in steps small against what it keeps.
	SegmentBytes int64
	// RetentionBytes bounds the segments' total size: past it the oldest
	// are deleted (never the one being written). DefaultRetentionBytes
	// when 0.
	RetentionBytes int64
	// Retention deletes a segment whose newest record is older than this.
	// DefaultRetention when 0.
	Retention time.Duration
	// Fsync is how often appended records are written out and fsynced;
	// DefaultFsync when 0.
	Fsync time.Duration
	// MaxScans bounds the scans that read at once (each holds a read
	// buffer and its share of the disk); more wait for their turn.
	// DefaultMaxScans when 0.
	MaxScans int
	// Logger receives the archive's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Archive is a directory of segment files. Append, Scan and the others are
// safe for concurrent use.
type Archive struct {
	cfg    Config
	log    *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	wake   chan struct{} // 1 slot: a job is queued for the writer
	tock   chan struct{} // 1 slot: time for the syncer to fsync
	synced chan struct{} // closed when the syncer has ended
	scans  chan struct{} // a slot per scan reading now, MaxScans of them

	mu      sync.Mutex
	drained *sync.Cond // signalled when the writer has no job left (on mu)
	segs    []*segment // oldest first; the last is active when file != nil
	total   int64      // bytes of all segments
	file    *os.File   // the active segment, nil when none is open
	buf     []byte     // frames appended to the active segment, not yet queued
	jobs    []writeJob // buffers waiting for the writer, in order
	queued  int64      // bytes in jobs
	writing bool       // the writer holds a job it took from jobs
	spare   [][]byte   // buffers written out, for reuse
	toSync  []*os.File // closed segments' files, for the syncer to fsync and close
	dirty   bool       // a file was created or removed: fsync the directory
	last    Key        // the newest key appended or found
	// failed is why records are not being stored, nil while they are.
	failed    error
	failedAt  time.Time
	triedAt   time.Time
	dropped   uint64 // records not stored since failed
	holeKey   Key    // the newest key not stored
	hole      bool   // a hole frame is owed at the next segment's start
	syncErr   error  // the last fsync's error, nil once one succeeds
	closed    bool
	closeOnce sync.Once
}

// writeJob is frames to write at the end of a segment's file; with last the
// segment is closed, and its file is fsynced and closed after.
type writeJob struct {
	seg  *segment
	f    *os.File
	buf  []byte
	last bool
}

// Open opens (or creates) the archive in cfg.Dir: it reads every segment,
// cuts a torn or corrupt tail off it, and starts the goroutine that writes
// out and fsyncs every cfg.Fsync. Close stops it.
func Open(cfg Config) (*Archive, error) {
	if cfg.RetentionBytes <= 0 {
		cfg.RetentionBytes = DefaultRetentionBytes
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = min(DefaultSegmentBytes, max(cfg.RetentionBytes/16, 1<<20))
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Fsync <= 0 {
		cfg.Fsync = DefaultFsync
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxScans <= 0 {
		cfg.MaxScans = DefaultMaxScans
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("archive dir: %w", err)
	}
	a := &Archive{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{}),
		wake: make(chan struct{}, 1), tock: make(chan struct{}, 1), synced: make(chan struct{}),
		scans: make(chan struct{}, cfg.MaxScans)}
	a.drained = sync.NewCond(&a.mu)
	names, err := listSegments(cfg.Dir)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for _, name := range names {
		path := filepath.Join(cfg.Dir, name)
		seg, torn, err := loadSegment(path)
		if err != nil {
			return nil, err
		}
		if torn > 0 {
			a.log.Warn("archive: cut a torn or corrupt tail off a segment", slog.String("segment", name),
				slog.Int64("kept_bytes", seg.size), slog.Int64("cut_bytes", torn))
			if err := os.Truncate(path, seg.size); err != nil {
				return nil, fmt.Errorf("cut torn tail of %s: %w", name, err)
			}
			a.dirty = true
		}
		if seg.count == 0 {
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("remove empty segment: %w", err)
			}
			continue
		}
		if first, _ := parseSegName(name); seg.first.Compare(first) < 0 || (len(a.segs) > 0 && seg.first.Compare(a.last) <= 0) {
			return nil, fmt.Errorf("archive segment %s: its keys (%s...) are out of order", name, seg.first)
		}
		a.segs = append(a.segs, seg)
		a.total += seg.size
		a.last = seg.last
	}
	if len(a.segs) > 0 {
		a.log.Info("archive opened", slog.String("dir", cfg.Dir), slog.Int("segments", len(a.segs)),
			slog.Int64("bytes", a.total), slog.String("last", a.last.String()), slog.Duration("took", time.Since(start)))
	}
	a.mu.Lock()
	a.retainLocked(time.Now())
	a.mu.Unlock()
	go a.run()
	go a.syncer()
	return a, nil
}

// Last returns the key of the newest record appended or found at Open; the
// zero Key when the archive is empty.
func (a *Archive) Last() Key {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// First returns the key of the oldest record kept; the zero Key when none.
func (a *Archive) First() Key {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.segs) == 0 {
		return Key{}
	}
	return a.segs[0].first
}

// Size returns the bytes of all segments.
func (a *Archive) Size() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}

// Append stores one record; keys must increase from call to call. It
// never waits for the disk: it buffers the record, which the writer
// goroutine writes out within the fsync interval. When the disk fails
// (full, a file size limit, or too slow) the record is counted as not
// stored, Health says so, and writing is tried again every second; the
// records in between are marked as a hole.
func (a *Archive) Append(key Key, t int64, channel string, js []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	if len(channel) > maxChannel {
		channel = channel[:maxChannel]
	}
	if a.failed == nil && a.file != nil &&
		a.segs[len(a.segs)-1].size+int64(frameFixed+len(channel)+len(js)) > a.cfg.SegmentBytes {
		a.rotateLocked()
	}
	if a.failed == nil && a.queued > maxQueued {
		a.rotateLocked()
		a.failLocked(errTooSlow)
	}
	if a.failed == nil && a.file == nil {
		a.openActiveLocked(key)
	}
	if a.failed != nil {
		a.dropLocked(key)
		return
	}
	seg := a.segs[len(a.segs)-1]
	off := seg.size
	if a.buf == nil {
		a.buf = a.newBufLocked()
	}
	start := len(a.buf)
	a.buf = appendFrame(a.buf, key, t, 0, channel, js)
	n := len(a.buf) - start
	e := Entry{Key: key, Time: t, Channel: a.buf[start+frameFixed : start+frameFixed+len(channel)]}
	seg.note(&e, off, n)
	a.total += int64(n)
	a.last = key
	if len(a.buf) >= writeBuf {
		a.queueLocked(false)
	}
}

// newBufLocked returns an empty write buffer, reused when one is spare.
func (a *Archive) newBufLocked() []byte {
	if n := len(a.spare); n > 0 {
		b := a.spare[n-1]
		a.spare = a.spare[:n-1]
		return b[:0]
	}
	return make([]byte, 0, writeBuf+writeBuf/4)
}

// queueLocked hands the active segment's buffer to the writer; with last
// the segment is closed after it.
func (a *Archive) queueLocked(last bool) {
	if a.file == nil || (len(a.buf) == 0 && !last) {
		return
	}
	a.jobs = append(a.jobs, writeJob{seg: a.segs[len(a.segs)-1], f: a.file, buf: a.buf, last: last})
	a.queued += int64(len(a.buf))
	a.buf = nil
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// dropLocked counts a record not stored.
func (a *Archive) dropLocked(key Key) {
	a.dropped++
	a.holeKey = key
	a.hole = true
	a.last = key
}

// openActiveLocked starts a segment for records from first on, led by a
// hole frame when records were lost. It sets failed when it cannot.
func (a *Archive) openActiveLocked(first Key) {
	holeKey := a.holeKey
	name := first
	if a.hole {
		name = holeKey
	}
	path := filepath.Join(a.cfg.Dir, segName(name))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		a.failLocked(fmt.Errorf("create segment: %w", err))
		return
	}
	head := []byte(segMagic)
	seg := &segment{path: path, size: int64(len(head))}
	if a.hole {
		var e Entry
		head = appendFrame(head, holeKey, time.Now().UnixNano(), flagHole, "", nil)
		n, _ := decodeFrame(head[len(segMagic):], &e)
		seg.note(&e, int64(len(segMagic)), n)
	}
	if _, err := f.Write(head); err != nil {
		f.Close()
		os.Remove(path)
		a.failLocked(fmt.Errorf("write segment header: %w", err))
		return
	}
	seg.written = int64(len(head))
	a.file, a.dirty = f, true
	a.segs = append(a.segs, seg)
	a.total += seg.size
	a.hole = false
}

// writeJobs writes the queued jobs out, in order, outside the lock; it
// runs on the writer goroutine only, so writes never interleave.
func (a *Archive) writeJobs() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.jobs) > 0 {
		j := a.jobs[0]
		a.jobs = a.jobs[1:]
		a.queued -= int64(len(j.buf))
		a.writing = true
		a.mu.Unlock()
		n, err := j.f.Write(j.buf)
		a.mu.Lock()
		a.writing = false
		if err != nil {
			a.writeFailedLocked(j, err)
			continue
		}
		j.seg.written += int64(n)
		if j.last {
			a.toSync = append(a.toSync, j.f)
		}
		if cap(j.buf) <= 2*writeBuf && len(a.spare) < 4 {
			a.spare = append(a.spare, j.buf)
		}
	}
	a.drained.Broadcast()
}

// writeFailedLocked handles a failed write of j: the segment is cut back to
// what was written whole and closed, and so is every segment after it
// whose frames were still queued; their records not on disk are counted as
// not stored, and storing stops until a retry succeeds.
func (a *Archive) writeFailedLocked(j writeJob, err error) {
	affected := map[*segment]*os.File{j.seg: j.f}
	for _, q := range a.jobs {
		affected[q.seg] = q.f
	}
	if a.file != nil {
		affected[a.segs[len(a.segs)-1]] = a.file
	}
	a.jobs, a.queued, a.buf, a.file = nil, 0, nil, nil
	kept := a.segs[:0]
	for _, seg := range a.segs {
		f, ok := affected[seg]
		if !ok {
			kept = append(kept, seg)
			continue
		}
		if terr := f.Truncate(seg.written); terr != nil {
			a.log.Warn("archive: cut a failed write back", slog.String("segment", filepath.Base(seg.path)), slog.Any("error", terr))
		}
		f.Close()
		a.total -= seg.size
		re, _, lerr := loadSegment(seg.path)
		switch {
		case lerr != nil:
			a.dropped += uint64(seg.count)
		case re.count == 0:
			os.Remove(seg.path)
			a.dropped += uint64(seg.count)
		default:
			re.written = re.size
			a.dropped += uint64(max(seg.count-re.count, 0))
			a.total += re.size
			kept = append(kept, re)
		}
	}
	a.segs = kept
	a.holeKey, a.hole = a.last, true
	a.failLocked(fmt.Errorf("write segment %s: %w", filepath.Base(j.seg.path), err))
}

// failLocked stops storing records because of err.
func (a *Archive) failLocked(err error) {
	now := time.Now()
	if a.failed == nil {
		a.failedAt = now
		a.log.Error("archive: not storing records (live streaming goes on); retrying every second",
			slog.String("dir", a.cfg.Dir), slog.Any("error", err))
	}
	a.failed, a.triedAt = err, now
}

// rotateLocked closes the active segment (the writer writes its last
// frames, then fsyncs and closes its file) and applies retention.
func (a *Archive) rotateLocked() {
	if a.file != nil {
		a.queueLocked(true)
		a.file = nil
	}
	a.retainLocked(time.Now())
}

// retainLocked deletes the oldest closed segments while the total is over
// RetentionBytes or their newest record is older than Retention.
func (a *Archive) retainLocked(now time.Time) {
	cutoff := now.Add(-a.cfg.Retention).UnixNano()
	for len(a.segs) > 0 {
		old := a.segs[0]
		if a.file != nil && len(a.segs) == 1 {
			return // never the active one
		}
		if a.total <= a.cfg.RetentionBytes && old.maxTime >= cutoff {
			return
		}
		if err := os.Remove(old.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("archive: delete old segment", slog.String("segment", filepath.Base(old.path)), slog.Any("error", err))
			return
		}
		a.log.Debug("archive: deleted old segment", slog.String("segment", filepath.Base(old.path)),
			slog.Int64("bytes", old.size), slog.Time("newest", time.Unix(0, old.maxTime)))
		a.segs = a.segs[1:]
		a.total -= old.size
		a.dirty = true
	}
}

// run is the writer goroutine: it writes queued buffers out as they come
// and, every Fsync interval, what is buffered, then has the syncer fsync;
// until Close. A slow fsync thus never delays a write-out, which is what
// a kill -9 loses.
func (a *Archive) run() {
	defer close(a.done)
	t := time.NewTicker(a.cfg.Fsync)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			a.writeJobs()
			return
		case <-a.wake:
			a.writeJobs()
		case <-t.C:
			a.tick()
		}
	}
}

// tick writes out what is buffered, retries a failed disk, applies
// retention by age, and wakes the syncer.
func (a *Archive) tick() {
	now := time.Now()
	a.mu.Lock()
	a.queueLocked(false)
	a.mu.Unlock()
	a.writeJobs()
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	if a.failed != nil && now.Sub(a.triedAt) >= retryEvery && a.queued == 0 {
		a.retryLocked(now)
	}
	a.retainLocked(now)
	a.mu.Unlock()
	select {
	case a.tock <- struct{}{}:
	default: // the syncer is still at the last one
	}
}

// syncer fsyncs the active segment, the closed ones (then closes them) and
// the directory when the writer says so; until Close.
func (a *Archive) syncer() {
	defer close(a.synced)
	for {
		select {
		case <-a.done:
			return
		case <-a.tock:
			a.syncNow()
		}
	}
}

// syncNow fsyncs what the syncer fsyncs.
func (a *Archive) syncNow() {
	a.mu.Lock()
	f, old, dirty := a.file, a.toSync, a.dirty
	a.toSync, a.dirty = nil, false
	a.mu.Unlock()
	var errs []error
	for _, c := range old {
		if err := c.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("fsync %s: %w", filepath.Base(c.Name()), err))
		}
		c.Close()
	}
	a.syncFiles(f, dirty, errs...)
}

// retryLocked tries to store records again after a failure.
func (a *Archive) retryLocked(now time.Time) {
	a.triedAt = now
	err := a.failed
	a.failed = nil
	a.openActiveLocked(a.holeKey)
	if a.failed != nil {
		if !errors.Is(a.failed, err) {
			a.failed = fmt.Errorf("%w (retried: %w)", err, a.failed)
		}
		return
	}
	a.log.Info("archive: storing records again", slog.String("dir", a.cfg.Dir),
		slog.Uint64("not_stored", a.dropped), slog.Duration("for", now.Sub(a.failedAt)))
	a.dropped = 0
}

// syncFiles fsyncs the active file, and the directory when files came or
// went, and records the outcome with errs of earlier fsyncs.
func (a *Archive) syncFiles(active *os.File, dir bool, errs ...error) {
	if active != nil {
		if err := active.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("fsync %s: %w", filepath.Base(active.Name()), err))
		}
	}
	if dir {
		if d, err := os.Open(a.cfg.Dir); err == nil {
			if err := d.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("fsync dir: %w", err))
			}
			d.Close()
		}
	}
	a.mu.Lock()
	a.syncFailedLocked(errors.Join(errs...))
	a.mu.Unlock()
}

// syncFailedLocked records the outcome of an fsync (nil: it worked).
func (a *Archive) syncFailedLocked(err error) {
	if err != nil && a.syncErr == nil {
		a.log.Error("archive: fsync failed", slog.Any("error", err))
	}
	a.syncErr = err
}

// drainLocked queues what is buffered and waits until the writer has
// written every job out. a.mu is held (and released while waiting).
func (a *Archive) drainLocked() {
	a.queueLocked(false)
	for (len(a.jobs) > 0 || a.writing) && !a.closed {
		select {
		case a.wake <- struct{}{}:
		default:
		}
		a.drained.Wait()
	}
}

// Sync writes out and fsyncs everything appended so far.
func (a *Archive) Sync() error {
	a.mu.Lock()
	a.drainLocked()
	a.mu.Unlock()
	a.syncNow()
	return a.Health()
}

// Health returns nil while records are stored, else why not.
func (a *Archive) Health() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.failed != nil:
		return fmt.Errorf("archive: %d records not stored on disk since %s: %w",
			a.dropped, a.failedAt.UTC().Format(time.RFC3339), a.failed)
	case a.syncErr != nil:
		return fmt.Errorf("archive: %w", a.syncErr)
	}
	return nil
}

// Close writes out and fsyncs what is appended, and closes the files.
// Append after Close does nothing.
func (a *Archive) Close() error {
	var err error
	a.closeOnce.Do(func() {
		a.mu.Lock()
		a.queueLocked(true)
		a.file, a.closed = nil, true
		a.mu.Unlock()
		close(a.stop)
		<-a.done   // the writer wrote every job out
		<-a.synced // and the syncer is done
		a.mu.Lock()
		a.dirty = true
		a.mu.Unlock()
		a.syncNow() // fsyncs and closes the last file
		a.mu.Lock()
		a.drained.Broadcast()
		err = a.syncErr
		a.mu.Unlock()
	})
	return err
}
