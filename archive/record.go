package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"

	"github.com/logviewer/logviewer/internal/eventid"
)

// Key orders archived records: the epoch of the daemon's life that published
// a record (its start in Unix milliseconds), then the record's sequence
// number in that life. Its text form is the event ID "<epoch>-<seq>".
type Key struct {
	Epoch int64
	Seq   uint64
}

// Compare returns -1, 0 or +1 as k is before, equal to or after o.
func (k Key) Compare(o Key) int {
	switch {
	case k.Epoch < o.Epoch:
		return -1
	case k.Epoch > o.Epoch:
		return 1
	case k.Seq < o.Seq:
		return -1
	case k.Seq > o.Seq:
		return 1
	}
	return 0
}

// IsZero reports whether k is the zero Key, before every record's.
func (k Key) IsZero() bool { return k == Key{} }

// String returns the event ID of k, "<epoch>-<seq>".
func (k Key) String() string {
	b := strconv.AppendInt(make([]byte, 0, 40), k.Epoch, 10)
	b = append(b, '-')
	return string(strconv.AppendUint(b, k.Seq, 10))
}

// ParseKey reads an event ID "<epoch>-<seq>" (decimal, no signs).
func ParseKey(id string) (Key, error) {
	epoch, seq, ok := eventid.Parse(id)
	if !ok || epoch > math.MaxInt64 {
		return Key{}, fmt.Errorf("event id %.40q: want <epoch>-<seq>, decimal numbers", id)
	}
	return Key{Epoch: int64(epoch), Seq: seq}, nil
}

// Entry is one archived record as a scan hands it out. Channel and JSON
// alias the scan's read buffer: they are valid only during the callback.
type Entry struct {
	Key  Key
	Time int64 // Unix nanoseconds at publish time
	// Hole marks a place where records were not stored (the disk was full
	// or failed): records up to and including Key may be missing before it.
	// A hole has no channel and no JSON.
	Hole    bool
	Channel []byte
	JSON    []byte
}

// Frame layout, little endian:
//
//	u32 body length, u32 CRC-32C of the body, then the body:
//	i64 epoch, u64 seq, i64 time (Unix ns), u8 flags, u16 channel length,
//	channel bytes, JSON bytes.
const (
	frameHeader = 8
	bodyFixed   = 8 + 8 + 8 + 1 + 2
	// frameFixed is a frame's size besides its channel and JSON.
	frameFixed = frameHeader + bodyFixed
	// maxBody bounds a body: a larger length field is corruption, not a
	// record (records are bounded by --max-message-size, at most 16 MiB).
	maxBody = 32 << 20
	// maxChannel bounds a channel name (transform cuts them at 253 bytes).
	maxChannel = 1 << 12

	flagHole = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of decodeFrame.
var (
	// errShort says the buffer ends inside the frame: more bytes may follow,
	// or at the end of a file the frame is torn.
	errShort = errors.New("archive: frame cut short")
	// errCorrupt says the bytes are not a frame.
	errCorrupt = errors.New("archive: corrupt frame")
)

// appendFrame appends the frame of one entry to b.
func appendFrame(b []byte, key Key, t int64, flags byte, channel string, js []byte) []byte {
	n := bodyFixed + len(channel) + len(js)
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	b = binary.LittleEndian.AppendUint32(b, 0) // CRC, below
	b = binary.LittleEndian.AppendUint64(b, uint64(key.Epoch))
	b = binary.LittleEndian.AppendUint64(b, key.Seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(t))
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(channel)))
	b = append(b, channel...)
	b = append(b, js...)
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(b[start+frameHeader:], castagnoli))
	return b
}

// decodeFrame reads the frame at the start of b into e (whose slices then
// alias b) and returns the frame's size. It fails with errShort when b
// ends inside the frame and errCorrupt when b does not start with one.
func decodeFrame(b []byte, e *Entry) (int, error) {
	if len(b) < frameHeader {
		return 0, errShort
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < bodyFixed || n > maxBody {
		return 0, errCorrupt
	}
	if len(b) < frameHeader+n {
		return 0, errShort
	}
	body := b[frameHeader : frameHeader+n]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, errCorrupt
	}
	cl := int(binary.LittleEndian.Uint16(body[25:]))
	if cl > maxChannel || bodyFixed+cl > n || body[24]&^flagHole != 0 {
		return 0, errCorrupt
	}
	return parseFrame(b, e), nil
}

// parseFrame is decodeFrame for a frame already checked by it.
func parseFrame(b []byte, e *Entry) int {
	n := int(binary.LittleEndian.Uint32(b))
	body := b[frameHeader : frameHeader+n]
	flags := body[24]
	cl := int(binary.LittleEndian.Uint16(body[25:]))
	e.Key = Key{Epoch: int64(binary.LittleEndian.Uint64(body)), Seq: binary.LittleEndian.Uint64(body[8:])}
	e.Time = int64(binary.LittleEndian.Uint64(body[16:]))
	e.Hole = flags&flagHole != 0
	e.Channel = body[bodyFixed : bodyFixed+cl]
	e.JSON = body[bodyFixed+cl:]
	return frameHeader + n
}
