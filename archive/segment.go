package archive

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// segMagic starts every segment file.
const segMagic = "LVARCH1\n"

// segExt ends the name of a segment file.
const segExt = ".seg"

// indexEvery is the spacing, in bytes of a segment, of its index points: a
// seek by key or a backward scan reads at most about this much more than
// it needs.
const indexEvery = 64 << 10

// maxSegChannels bounds the channel names a segment's summary keeps; a
// segment with more is scanned by every search whatever its channels.
const maxSegChannels = 256

// indexPoint is where a frame starts in a segment, with its key and time.
type indexPoint struct {
	off  int64
	key  Key
	time int64
}

// segment is one file of the archive and what is known of its contents.
// The active segment's fields change under Archive.mu; readers copy what
// they need under it (see snapshot).
type segment struct {
	path    string
	size    int64 // bytes of whole frames, the header included
	written int64 // bytes of it in the file (the rest waits for the writer)
	count   int
	first   Key
	last    Key
	minTime int64
	maxTime int64
	// index holds a point every indexEvery bytes, the first frame's first.
	// It only grows: a copy of the slice header stays valid.
	index []indexPoint
	// channels names the channels of its records; nil when there are more
	// than maxSegChannels (then any channel may be in it).
	channels map[string]struct{}
	manyChan bool
	// holeFirst is set when the first frame is a hole.
	holeFirst bool
	lastIdx   int64 // offset of the last index point
}

// segName is the file name of a segment whose first record has key k: the
// names sort as the keys do.
func segName(k Key) string {
	return fmt.Sprintf("%016x-%016x%s", uint64(k.Epoch), k.Seq, segExt)
}

// parseSegName reads the first key out of a segment's file name.
func parseSegName(name string) (Key, bool) {
	base, ok := strings.CutSuffix(name, segExt)
	if !ok {
		return Key{}, false
	}
	e, s, ok := strings.Cut(base, "-")
	if !ok || len(e) != 16 || len(s) != 16 {
		return Key{}, false
	}
	epoch, err1 := strconv.ParseUint(e, 16, 64)
	seq, err2 := strconv.ParseUint(s, 16, 64)
	if err1 != nil || err2 != nil {
		return Key{}, false
	}
	return Key{Epoch: int64(epoch), Seq: seq}, true
}

// note adds the frame of e at off (size bytes) to the summary.
func (s *segment) note(e *Entry, off int64, size int) {
	if s.count == 0 {
		s.first, s.minTime, s.maxTime = e.Key, e.Time, e.Time
		s.holeFirst = e.Hole
		s.index = append(s.index, indexPoint{off: off, key: e.Key, time: e.Time})
		s.lastIdx = off
	} else if off-s.lastIdx >= indexEvery {
		s.index = append(s.index, indexPoint{off: off, key: e.Key, time: e.Time})
		s.lastIdx = off
	}
	s.count++
	s.last = e.Key
	s.minTime = min(s.minTime, e.Time)
	s.maxTime = max(s.maxTime, e.Time)
	s.size = off + int64(size)
	if !e.Hole && !s.manyChan {
		if _, ok := s.channels[string(e.Channel)]; !ok {
			if len(s.channels) >= maxSegChannels {
				s.manyChan, s.channels = true, nil
			} else {
				if s.channels == nil {
					s.channels = make(map[string]struct{})
				}
				s.channels[string(e.Channel)] = struct{}{}
			}
		}
	}
}

// loadSegment reads the segment at path, checking every frame, and builds
// its summary. The first frame that is cut short or corrupt ends the valid
// part: torn reports how many bytes follow it (the caller cuts them).
func loadSegment(path string) (seg *segment, torn int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("open segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("stat segment: %w", err)
	}
	seg = &segment{path: path}
	defer func() {
		if seg != nil {
			seg.written = seg.size
		}
	}()
	var magic [len(segMagic)]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || string(magic[:]) != segMagic {
		return seg, st.Size(), nil // not even a header: all of it is torn
	}
	seg.size = int64(len(segMagic))
	r := newFrameReader(f, seg.size, st.Size())
	var e Entry
	for {
		off := r.off
		n, err := r.next(&e)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return seg, 0, nil
			}
			if errors.Is(err, errShort) || errors.Is(err, errCorrupt) {
				return seg, st.Size() - off, nil
			}
			return nil, 0, fmt.Errorf("read segment %s: %w", filepath.Base(path), err)
		}
		seg.note(&e, off, n)
	}
}

// frameReader reads frames forward from a file between two offsets through
// a buffer it reuses.
type frameReader struct {
	f        io.ReaderAt
	off, end int64 // next frame's offset; where the readable part ends
	buf      []byte
	lo, hi   int // buffered bytes buf[lo:hi] start at off
}

// readBuf is the reading buffer of a scan, grown for a larger frame.
const readBuf = 1 << 20

func newFrameReader(f io.ReaderAt, off, end int64) *frameReader {
	return &frameReader{f: f, off: off, end: end, buf: make([]byte, readBuf)}
}

// next decodes the next frame into e and returns its size. It returns
// io.EOF at end, errShort when the readable part ends inside a frame and
// errCorrupt at bytes that are no frame.
func (r *frameReader) next(e *Entry) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	for {
		n, err := decodeFrame(r.buf[r.lo:r.hi], e)
		if err == nil {
			r.lo += n
			r.off += int64(n)
			return n, nil
		}
		if !errors.Is(err, errShort) {
			return 0, err
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
}

// fill moves the buffered bytes to the front and reads more; errShort when
// nothing more can be read before end.
func (r *frameReader) fill() error {
	have := r.hi - r.lo
	left := r.end - r.off - int64(have)
	if left <= 0 {
		return errShort
	}
	copy(r.buf, r.buf[r.lo:r.hi])
	r.lo, r.hi = 0, have
	if have == len(r.buf) { // a frame larger than the buffer
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
	want := min(int64(len(r.buf)-have), left)
	n, err := r.f.ReadAt(r.buf[have:have+int(want)], r.off+int64(have))
	r.hi += n
	if n > 0 {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return errShort // the file is shorter than we were told
	}
	return err
}

// listSegments returns the segment files of dir sorted by their first key.
func listSegments(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if _, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
