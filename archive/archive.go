// Package archive keeps the published records on disk, in order, in segment
// files of bounded size: appended as they are published, fsynced every
// interval, cut at the first torn or corrupt frame when opened, deleted
// whole, oldest first, past a total size or an age, and scanned in key
// order either way with a sparse index per segment, so a resume by ID seeks
// rather than reads everything before it. It knows nothing of the bus or of
// HTTP.
//
// Crash safety: a record is in the file when the write buffer is written
// out (at every fsync tick, when 256 KiB are buffered, before any scan) and
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
)

// writeBuf is how many bytes of frames are buffered before a write.
const writeBuf = 256 << 10

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
	// Logger receives the archive's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Archive is a directory of segment files. Append, Scan and the others are
// safe for concurrent use.
type Archive struct {
	cfg  Config
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	segs    []*segment // oldest first; the last is active when file != nil
	total   int64      // bytes of all segments
	file    *os.File   // the active segment, nil when none is open
	written int64      // bytes of the active segment written to file
	buf     []byte     // frames appended but not yet written
	toSync  []*os.File // closed segments' files, for the flusher to fsync and close
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
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("archive dir: %w", err)
	}
	a := &Archive{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{})}
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

// Append stores one record; keys must increase from call to call. It does
// not wait for the disk: the record is written out within the fsync
// interval. When the disk fails (full, or a file size limit) the record is
// counted as not stored, Health says so, and writing is tried again every
// second; the records in between are marked as a hole.
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
	if a.failed == nil && a.file == nil {
		a.openActiveLocked(key)
	}
	if a.failed != nil {
		a.dropLocked(key)
		return
	}
	seg := a.segs[len(a.segs)-1]
	off := seg.size
	start := len(a.buf)
	a.buf = appendFrame(a.buf, key, t, 0, channel, js)
	n := len(a.buf) - start
	e := Entry{Key: key, Time: t, Channel: a.buf[start+frameFixed : start+frameFixed+len(channel)]}
	seg.note(&e, off, n)
	a.total += int64(n)
	a.last = key
	if len(a.buf) >= writeBuf {
		a.flushLocked()
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
	a.file, a.written, a.dirty = f, int64(len(head)), true
	a.segs = append(a.segs, seg)
	a.total += seg.size
	a.hole = false
}

// flushLocked writes the buffered frames to the active segment. A failed
// write cuts the segment back to what was written whole, closes it, and
// stops storing until a retry succeeds.
func (a *Archive) flushLocked() {
	if len(a.buf) == 0 || a.file == nil {
		return
	}
	n, err := a.file.Write(a.buf)
	if err == nil {
		a.written += int64(n)
		a.buf = a.buf[:0]
		if cap(a.buf) > 4*writeBuf {
			a.buf = nil
		}
		return
	}
	// The frames in buf are lost; so may be a part of one in the file.
	seg := a.segs[len(a.segs)-1]
	lost := seg.count
	f := a.file
	a.file, a.buf = nil, a.buf[:0]
	if terr := f.Truncate(a.written); terr != nil {
		a.log.Warn("archive: cut a failed write back", slog.String("segment", filepath.Base(seg.path)), slog.Any("error", terr))
	}
	f.Close()
	a.total -= seg.size
	if re, _, lerr := loadSegment(seg.path); lerr == nil {
		a.segs[len(a.segs)-1] = re
		lost -= re.count
		a.total += re.size
		if re.count == 0 {
			a.segs = a.segs[:len(a.segs)-1]
			os.Remove(seg.path)
			a.total -= re.size
		}
	} else {
		a.segs = a.segs[:len(a.segs)-1]
	}
	a.dropped += uint64(max(lost, 0))
	a.holeKey, a.hole = a.last, true
	a.failLocked(fmt.Errorf("write segment %s: %w", filepath.Base(seg.path), err))
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

// rotateLocked closes the active segment and hands its file to the
// flusher, then applies retention.
func (a *Archive) rotateLocked() {
	a.flushLocked()
	if a.file != nil {
		a.toSync = append(a.toSync, a.file)
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

// run writes out and fsyncs every Fsync interval until Close.
func (a *Archive) run() {
	defer close(a.done)
	t := time.NewTicker(a.cfg.Fsync)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.tick()
		}
	}
}

// tick writes out what is buffered, retries a failed disk, applies
// retention by age, and fsyncs outside the lock so Append never waits for
// the disk.
func (a *Archive) tick() {
	now := time.Now()
	a.mu.Lock()
	a.flushLocked()
	if a.failed != nil && now.Sub(a.triedAt) >= retryEvery {
		a.retryLocked(now)
	}
	a.retainLocked(now)
	f, old, dirty := a.file, a.toSync, a.dirty
	a.toSync, a.dirty = nil, false
	a.mu.Unlock()
	a.syncFiles(f, old, dirty)
}

// retryLocked tries to store records again after a failure.
func (a *Archive) retryLocked(now time.Time) {
	a.triedAt = now
	err := a.failed
	a.failed = nil
	a.openActiveLocked(a.holeKey)
	if a.failed != nil {
		a.failed = fmt.Errorf("%w (retried: %w)", err, a.failed)
		return
	}
	a.log.Info("archive: storing records again", slog.String("dir", a.cfg.Dir),
		slog.Uint64("not_stored", a.dropped), slog.Duration("for", now.Sub(a.failedAt)))
	a.dropped = 0
}

// syncFiles fsyncs the active file, fsyncs and closes closed ones, and
// fsyncs the directory when files came or went.
func (a *Archive) syncFiles(active *os.File, old []*os.File, dir bool) {
	var errs []error
	for _, f := range old {
		if err := f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("fsync %s: %w", filepath.Base(f.Name()), err))
		}
		f.Close()
	}
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
	err := errors.Join(errs...)
	a.mu.Lock()
	if err != nil && a.syncErr == nil {
		a.log.Error("archive: fsync failed", slog.Any("error", err))
	}
	a.syncErr = err
	a.mu.Unlock()
}

// Sync writes out and fsyncs everything appended so far.
func (a *Archive) Sync() error {
	a.mu.Lock()
	a.flushLocked()
	f, old, dirty := a.file, a.toSync, a.dirty
	a.toSync, a.dirty = nil, false
	a.mu.Unlock()
	a.syncFiles(f, old, dirty)
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
		close(a.stop)
		<-a.done
		a.mu.Lock()
		a.flushLocked()
		f, old := a.file, a.toSync
		a.file, a.toSync, a.closed = nil, nil, true
		a.mu.Unlock()
		if f != nil {
			old = append(old, f)
		}
		a.syncFiles(nil, old, true)
		a.mu.Lock()
		err = a.syncErr
		a.mu.Unlock()
	})
	return err
}
