package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"
)

// ScanOptions select the records a scan hands out.
type ScanOptions struct {
	// After and Before bound the keys, both exclusive; the zero Key leaves
	// that side open.
	After, Before Key
	// Desc scans newest first.
	Desc bool
	// Since and Until bound the records' times (Unix nanoseconds),
	// inclusive; 0 leaves that side open.
	Since, Until int64
	// Match keeps the records of the channels for which it returns true;
	// nil keeps all. It is called once per channel name per scan.
	Match func(channel string) bool
	// MaxBytes stops the scan after it has read this many bytes of frames;
	// 0: no bound.
	MaxBytes int64
}

// ScanResult says how far a scan went.
type ScanResult struct {
	// Last is the key of the last frame read (handed out or not): a scan
	// that stopped early continues with After (or, newest first, Before)
	// set to it. Zero when nothing was read.
	Last Key
	// Bytes is how many bytes of frames were read.
	Bytes int64
	// Done is true when the scan reached the end of the range; false when
	// fn, MaxBytes or ctx stopped it.
	Done bool
}

// segView is what a scan needs of a segment, copied under the lock.
type segView struct {
	path             string
	size             int64
	first, last      Key
	minTime, maxTime int64
	index            []indexPoint
	channels         map[string]struct{} // nil: any
	hole             bool                // starts with a hole frame
}

// snapshot waits until every frame appended is written out and copies the
// segments' views.
func (a *Archive) snapshot() []segView {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.drainLocked()
	views := make([]segView, 0, len(a.segs))
	for i, s := range a.segs {
		v := segView{path: s.path, size: s.written, first: s.first, last: s.last, minTime: s.minTime,
			maxTime: s.maxTime, index: s.index, channels: s.channels, hole: s.holeFirst}
		if s.manyChan {
			v.channels = nil
		} else if i == len(a.segs)-1 && a.file != nil {
			v.channels = maps.Clone(s.channels) // still growing
			if v.channels == nil {
				v.channels = map[string]struct{}{}
			}
		}
		views = append(views, v)
	}
	return views
}

// Scan hands fn the records selected by o, oldest first (or newest first
// with o.Desc), and every hole frame within the key range whatever its
// channel. fn returns false to stop. Records appended before Scan was
// called are all seen; later ones may be. At most Config.MaxScans scans
// read at once; Scan waits for its turn, or until ctx ends.
func (a *Archive) Scan(ctx context.Context, o ScanOptions, fn func(*Entry) bool) (ScanResult, error) {
	select {
	case a.scans <- struct{}{}:
		defer func() { <-a.scans }()
	case <-ctx.Done():
		return ScanResult{}, fmt.Errorf("archive scan: waiting for a turn: %w", ctx.Err())
	}
	views := a.snapshot()
	sc := &scanner{o: o, fn: fn, ctx: ctx, matched: map[string]bool{}}
	if o.Desc {
		for i := len(views) - 1; i >= 0 && !sc.stop; i-- {
			if err := sc.segDesc(&views[i]); err != nil {
				return sc.res, err
			}
		}
	} else {
		for i := range views {
			if sc.stop {
				break
			}
			if err := sc.segAsc(&views[i]); err != nil {
				return sc.res, err
			}
		}
	}
	sc.res.Done = !sc.stop
	return sc.res, nil
}

// scanner is one scan's state.
type scanner struct {
	o       ScanOptions
	fn      func(*Entry) bool
	ctx     context.Context
	matched map[string]bool // channel name -> o.Match's answer
	res     ScanResult
	stop    bool
	buf     []byte
	offs    []int
	e       Entry
}

// skip reports whether a whole segment holds nothing the scan wants.
func (sc *scanner) skip(v *segView) bool {
	o := &sc.o
	if len(v.index) == 0 || (!o.After.IsZero() && v.last.Compare(o.After) <= 0) {
		return true // no frame yet, or all at or before After
	}
	if !o.Before.IsZero() && v.first.Compare(o.Before) >= 0 {
		return true
	}
	if v.hole {
		return false // a hole is handed out whatever the channels and times
	}
	if (o.Since != 0 && v.maxTime < o.Since) || (o.Until != 0 && v.minTime > o.Until) {
		return true
	}
	if o.Match != nil && v.channels != nil {
		for ch := range v.channels {
			if sc.match(ch) {
				return false
			}
		}
		return true
	}
	return false
}

// match caches o.Match per channel.
func (sc *scanner) match(ch string) bool {
	if sc.o.Match == nil {
		return true
	}
	if m, ok := sc.matched[ch]; ok {
		return m
	}
	m := sc.o.Match(ch)
	sc.matched[ch] = m
	return m
}

// matchBytes is match for a channel read from a frame; the map lookup does
// not copy ch.
func (sc *scanner) matchBytes(ch []byte) bool {
	if sc.o.Match == nil {
		return true
	}
	if m, ok := sc.matched[string(ch)]; ok {
		return m
	}
	return sc.match(string(ch))
}

// visit handles one decoded frame of size n; it reports whether the scan
// goes on. Keys outside the range were filtered by the caller.
func (sc *scanner) visit(n int) bool {
	e := &sc.e
	sc.res.Last = e.Key
	sc.res.Bytes += int64(n)
	keep := e.Hole || ((sc.o.Since == 0 || e.Time >= sc.o.Since) &&
		(sc.o.Until == 0 || e.Time <= sc.o.Until) && sc.matchBytes(e.Channel))
	if keep && !sc.fn(e) {
		sc.stop = true
		return false
	}
	if sc.o.MaxBytes > 0 && sc.res.Bytes >= sc.o.MaxBytes {
		sc.stop = true
		return false
	}
	return true
}

// inRange reports whether k is within (After, Before).
func (sc *scanner) inRange(k Key) bool {
	return (sc.o.After.IsZero() || k.Compare(sc.o.After) > 0) &&
		(sc.o.Before.IsZero() || k.Compare(sc.o.Before) < 0)
}

// segAsc scans one segment oldest first, from the index point before After.
func (sc *scanner) segAsc(v *segView) error {
	if sc.skip(v) {
		return nil
	}
	f, err := os.Open(v.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // deleted by retention since the snapshot
	}
	if err != nil {
		return fmt.Errorf("archive scan: %w", err)
	}
	defer f.Close()
	start := v.index[0].off
	if !sc.o.After.IsZero() {
		i := sort.Search(len(v.index), func(i int) bool { return v.index[i].key.Compare(sc.o.After) > 0 })
		start = v.index[max(i-1, 0)].off
	}
	r := newFrameReader(f, start, v.size)
	if sc.buf != nil {
		r.buf = sc.buf
	}
	defer func() { sc.buf = r.buf }()
	for blocks := 0; ; blocks++ {
		n, err := r.next(&sc.e)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("archive scan %s at %d: %w", filepath.Base(v.path), r.off, err)
		}
		if !sc.o.Before.IsZero() && sc.e.Key.Compare(sc.o.Before) >= 0 {
			return nil
		}
		if !sc.inRange(sc.e.Key) {
			continue
		}
		if !sc.visit(n) {
			return nil
		}
		if blocks%1024 == 0 && sc.ctx.Err() != nil {
			sc.stop = true
			return nil
		}
	}
}

// segDesc scans one segment newest first, a block between index points at
// a time, each block decoded forward and handed out backward.
func (sc *scanner) segDesc(v *segView) error {
	if sc.skip(v) {
		return nil
	}
	f, err := os.Open(v.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("archive scan: %w", err)
	}
	defer f.Close()
	for i := len(v.index) - 1; i >= 0; i-- {
		if sc.ctx.Err() != nil {
			sc.stop = true
			return nil
		}
		end := v.size
		if i+1 < len(v.index) {
			end = v.index[i+1].off
			if !sc.o.After.IsZero() && v.index[i+1].key.Compare(sc.o.After) <= 0 {
				return nil // this block and the older ones are all at or before After
			}
		}
		if !sc.o.Before.IsZero() && v.index[i].key.Compare(sc.o.Before) >= 0 {
			continue // all at or after Before
		}
		size := int(end - v.index[i].off)
		if cap(sc.buf) < size {
			sc.buf = make([]byte, size)
		}
		b := sc.buf[:size]
		if _, err := f.ReadAt(b, v.index[i].off); err != nil {
			return fmt.Errorf("archive scan %s at %d: %w", filepath.Base(v.path), v.index[i].off, err)
		}
		sc.offs = sc.offs[:0]
		for p := 0; p < len(b); {
			n, err := decodeFrame(b[p:], &sc.e)
			if err != nil {
				return fmt.Errorf("archive scan %s at %d: %w", filepath.Base(v.path), v.index[i].off+int64(p), err)
			}
			sc.offs = append(sc.offs, p)
			p += n
		}
		for j := len(sc.offs) - 1; j >= 0; j-- {
			n := parseFrame(b[sc.offs[j]:], &sc.e) // checked above
			if !sc.inRange(sc.e.Key) {
				if !sc.o.After.IsZero() && sc.e.Key.Compare(sc.o.After) <= 0 {
					return nil
				}
				continue
			}
			if !sc.visit(n) {
				return nil
			}
		}
	}
	return nil
}
