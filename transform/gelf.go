package transform

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Encoder turns messages into GELF 1.1 JSON objects. It is written by hand,
// append-style and without reflection, because it runs once per line. An
// Encoder is set up by its exported fields (the zero value is ready to use)
// and is safe for concurrent use; it encodes the parts of a record that
// depend on Hostname and Group once, on first use, and again only if they
// change, and keeps the text of the latest second of "timestamp" and
// minute of "_log_time" it wrote (see timecache.go).
type Encoder struct {
	Hostname string // the daemon's own host name: the "host" field
	Group    string // the "_group" field
	Compat   bool   // emit only the original rsyslog template's five fields

	parts unsafe.Pointer // *encoderParts, made by prepared; read and written atomically

	// The text of the latest times written, read and written atomically.
	received unsafe.Pointer // *receivedText, made by appendReceived
	logTime  unsafe.Pointer // *logTimeText, made by appendLogTime
}

// encoderParts are the parts of a record made of an Encoder's Hostname and
// Group, encoded with the constant text around them.
type encoderParts struct {
	hostname, group string // the Hostname and Group they were made from
	replaced        bool   // either needed invalid UTF-8 replaced

	start         []byte                     // {"version":"1.1","host":"<host>","short_message":"
	groupMember   []byte                     // ","_group":"<group>  (closing the _app_name string)
	groupFacility [len(facilityNames)][]byte // groupMember and facilityMembers[f], by facility f
	compatHost    []byte                     // ","host":"<host>","short_message":"
	compatGroup   []byte                     // ,"_group":"<group>"}
}

// prepared returns the encoded parts for the current Hostname and Group,
// making them when they are missing or were made for other values (after a
// change of the fields, or in a copy of an Encoder that was changed).
// Concurrent first calls may each make them; any of the results will do.
func (e *Encoder) prepared() *encoderParts {
	p := (*encoderParts)(atomic.LoadPointer(&e.parts))
	if p == nil || !sameHeader(p.hostname, e.Hostname) || !sameHeader(p.group, e.Group) {
		p = e.prepare(p)
	}
	return p
}

// prepare is the rest of prepared, kept out of it so that the compiler
// inlines prepared: it returns p when it was made for strings equal to
// Hostname and Group, if not the same, else makes new parts.
func (e *Encoder) prepare(p *encoderParts) *encoderParts {
	if p != nil && p.hostname == e.Hostname && p.group == e.Group {
		return p
	}
	p = newEncoderParts(e.Hostname, e.Group)
	atomic.StorePointer(&e.parts, unsafe.Pointer(p))
	return p
}

// sameHeader reports whether a and b are the same string header: the same
// bytes at the same place, so that they are equal.
func sameHeader(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

func newEncoderParts(hostname, group string) *encoderParts {
	p := &encoderParts{hostname: hostname, group: group}
	host, r1 := appendStringBody(nil, hostname)
	grp, r2 := appendStringBody(nil, group)
	p.replaced = r1 || r2
	cat := func(parts ...string) []byte { return []byte(strings.Join(parts, "")) }
	p.start = cat(`{"version":"1.1","host":"`, string(host), `","short_message":"`)
	p.groupMember = cat(`","_group":"`, string(grp))
	for f, member := range facilityMembers {
		p.groupFacility[f] = cat(string(p.groupMember), member)
	}
	p.compatHost = cat(`","host":"`, string(host), `","short_message":"`)
	p.compatGroup = cat(`,"_group":"`, string(grp), `"}`)
	return p
}

// facilityNames are the syslog facility keywords, by facility code.
var facilityNames = [...]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// facilityMembers are the pre-encoded _facility members, by facility code,
// each with the quote that closes the _group string before it.
var facilityMembers = func() (t [len(facilityNames)]string) {
	for i, name := range facilityNames {
		t[i] = `","_facility":"` + name + `"`
	}
	return t
}()

// Constant parts of a record, each with the quotes around the strings next
// to it.
const (
	timestampKey  = `","timestamp":`
	levelAppName  = `,"level":0,"_app_name":"`
	levelDigit    = len(`,"level":`) // where the level goes in levelAppName
	logTimeKey    = `,"_log_time":"`
	truncatedTrue = `,"_truncated":true`
	compatStart   = `{"_app_name":"`
)

// Append appends m as one GELF JSON object to dst. replaced reports whether
// invalid UTF-8 in m had to be replaced with U+FFFD.
//
// The object is always valid JSON in valid UTF-8, whatever m holds. Fields
// come in a fixed order: version, host, short_message, timestamp (reception
// time, seconds with milliseconds), level, _app_name (the sending host),
// _group, _facility, then, only when set, _app, _procid, _msgid, _hostname,
// _tls_peer (the CN of the sender's client certificate), _log_time, one
// _sd_<id>_<param> per structured-data parameter and _truncated. In compat mode it is exactly the rsyslog template's object:
// _app_name, host, short_message, timestamp (whole seconds), _group.
func (e *Encoder) Append(dst []byte, m *Message) (out []byte, replaced bool) {
	p := e.prepared()
	if e.Compat {
		return appendCompat(dst, p, m)
	}
	// Make room for all but the structured data and escapes at once.
	dst = slices.Grow(dst, len(p.start)+len(m.Text)+len(m.Peer)+len(p.groupMember)+
		len(m.AppName)+len(m.ProcID)+len(m.MsgID)+len(m.Hostname)+len(m.TLSPeer)+192)
	var r bool
	dst = append(dst, p.start...)
	dst, replaced = appendBody(dst, m.Text)
	replaced = replaced || p.replaced
	dst = append(dst, timestampKey...)
	dst = e.appendReceived(dst, m.Received)
	level := &levelAppNames[min(m.Severity, 7)]
	dst = slices.Grow(dst, shortAppNameRoom)
	if n := putShortAppName((*[shortAppNameRoom]byte)(dst[len(dst):len(dst)+shortAppNameRoom]), level, m.Peer); n >= 0 {
		dst = dst[:len(dst)+n]
	} else {
		dst = append(dst, level[:len(levelAppName)]...)
		dst, r = appendBody(dst, bytesOf(m.Peer))
		replaced = replaced || r
	}
	if int(m.Facility) < len(p.groupFacility) {
		dst = append(dst, p.groupFacility[m.Facility]...)
	} else {
		dst = append(dst, p.groupMember...)
		dst = append(dst, `","_facility":"`...)
		dst = strconv.AppendUint(dst, uint64(m.Facility), 10)
		dst = append(dst, '"')
	}
	// _app to _tls_peer: in one go when all are short and plain, as
	// they mostly are, else one by one.
	dst = slices.Grow(dst, shortMembersRoom)
	if n := putShortMembers((*[shortMembersRoom]byte)(dst[len(dst):len(dst)+shortMembersRoom]), m); n >= 0 {
		dst = dst[:len(dst)+n]
	} else {
		for i, s := range [...]string{m.AppName, m.ProcID, m.MsgID, m.Hostname, m.TLSPeer} {
			if s != "" {
				k := &memberKeys[i]
				dst, r = appendMember(dst, k.text[:k.n], s)
				replaced = replaced || r
			}
		}
	}
	if !m.Timestamp.IsZero() {
		dst = append(dst, logTimeKey...)
		dst = e.appendLogTime(dst, m.Timestamp)
		dst = append(dst, '"')
	}
	if len(m.StructuredData) > 0 {
		dst, r = appendStructuredData(dst, m.StructuredData)
		replaced = replaced || r
	}
	if m.Truncated {
		dst = append(dst, truncatedTrue...)
	}
	return append(dst, '}'), replaced
}

// levelAppNames are levelAppName with each level, 0 to 7, by level, padded
// to 32 bytes so that they are copied as a whole.
var levelAppNames = func() (t [8][32]byte) {
	for level := range t {
		copy(t[level][:], levelAppName)
		t[level][levelDigit] = byte('0' + level)
	}
	return t
}()

// shortAppNameRoom is the most putShortAppName writes: a padded
// levelAppNames entry, or one and a value of 16 bytes.
const shortAppNameRoom = 32 + 16

// putShortAppName writes level, an entry of levelAppNames, and s, the
// _app_name value (its closing quote starts groupMember), to the start of
// b and returns their length, when s is at most 16 bytes long and needs
// no escaping; else it returns -1. Like putShortMember, it calls nothing.
func putShortAppName(b *[shortAppNameRoom]byte, level *[32]byte, s string) int {
	v := bytesOf(s)
	if len(v) > 16 {
		return -1
	}
	// In halves: a copy of 32 bytes at once is a memmove call.
	*(*[16]byte)(b[:16]) = *(*[16]byte)(level[:16])
	*(*[16]byte)(b[16:32]) = *(*[16]byte)(level[16:])
	const n = len(levelAppName)
	if len(v) > 0 {
		x, y := loadShort(v)
		if !plainShort(x, y, len(v)) {
			return -1
		}
		storeShort((*[16]byte)(b[n:n+16]), len(v), x, y)
	}
	return n + len(v)
}

// memberKey is the key of an optional string member with the quote that
// opens its value, padded to 16 bytes.
type memberKey struct {
	text [16]byte
	n    int // the length of the key
}

// memberKeys are the keys of the optional string members, in their order
// in a record.
var memberKeys = func() (t [5]memberKey) {
	for i, key := range [...]string{`,"_app":"`, `,"_procid":"`, `,"_msgid":"`, `,"_hostname":"`, `,"_tls_peer":"`} {
		t[i].n = copy(t[i].text[:], key)
	}
	return t
}()

// shortMemberRoom is the most putShortMember writes: the key, padded, a
// value of 16 bytes and its closing quote.
const shortMemberRoom = 16 + 16 + 1

// shortMembersRoom is the most putShortMembers writes.
const shortMembersRoom = len(memberKeys) * shortMemberRoom

// putShortMembers writes the optional members of m that are set to the
// start of b and returns their length, when all of them are at most 16
// bytes long and none needs escaping; else it returns -1.
func putShortMembers(b *[shortMembersRoom]byte, m *Message) int {
	n := putShortMember(b, 0, &memberKeys[0], m.AppName)
	n = putShortMember(b, n, &memberKeys[1], m.ProcID)
	n = putShortMember(b, n, &memberKeys[2], m.MsgID)
	n = putShortMember(b, n, &memberKeys[3], m.Hostname)
	return putShortMember(b, n, &memberKeys[4], m.TLSPeer)
}

// putShortMember writes the member of key k and value s to b[n:] when s is
// set, at most 16 bytes long and needs no escaping, and returns the length
// of b so far; it returns -1 for a value it cannot write, or when n is.
// It calls nothing, so that it needs no stack frame of its own.
func putShortMember(b *[shortMembersRoom]byte, n int, k *memberKey, s string) int {
	v := bytesOf(s)
	if n < 0 || len(v) == 0 {
		return n
	}
	if len(v) > 16 || n > len(b)-shortMemberRoom {
		return -1
	}
	x, y := loadShort(v)
	if !plainShort(x, y, len(v)) {
		return -1
	}
	d := (*[shortMemberRoom]byte)(b[n:])
	*(*[16]byte)(d[:16]) = k.text
	storeShort((*[16]byte)(d[k.n:k.n+16]), len(v), x, y)
	d[k.n+len(v)] = '"'
	return n + k.n + len(v) + 1
}

// appendMember appends key, then s as a JSON string body and the closing
// quote.
func appendMember(dst []byte, key []byte, s string) ([]byte, bool) {
	dst = append(dst, key...)
	dst, r := appendBody(dst, bytesOf(s))
	return append(dst, '"'), r
}

// appendCompat writes the five fields of the proof of concept's rsyslog
// template, in its order, so consumers of the old records keep working.
func appendCompat(dst []byte, p *encoderParts, m *Message) (out []byte, replaced bool) {
	dst = slices.Grow(dst, len(compatStart)+len(m.Peer)+len(p.compatHost)+len(m.Text)+
		len(timestampKey)+20+len(p.compatGroup))
	var r bool
	dst = append(dst, compatStart...)
	dst, replaced = appendStringBody(dst, m.Peer)
	dst = append(dst, p.compatHost...)
	dst, r = appendBody(dst, m.Text)
	replaced = replaced || r || p.replaced
	dst = append(dst, timestampKey...)
	dst = strconv.AppendInt(dst, m.Received.Unix(), 10)
	return append(dst, p.compatGroup...), replaced
}

// appendStructuredData writes one _sd_<id>_<param> field per parameter. IDs
// and names are cut to the characters GELF allows in field names; when two
// parameters end up with the same field name, the first one is kept so the
// object never holds a duplicate key.
func appendStructuredData(dst []byte, sd []SDElement) (out []byte, replaced bool) {
	// Two parameters can only give the same field name when the lengths
	// of their IDs and names add up to the same; lengths has bit L%64 set
	// when a parameter before has the length L, so that most parameters
	// need no comparison.
	var lengths uint64
	var last sdIDText
	for e := range sd {
		el := &sd[e]
		for k := range el.Params {
			// The common case in one call that makes none, so that the
			// loop keeps little on the stack.
			if cap(dst)-len(dst) >= sdShortRoom {
				b := (*[sdShortRoom]byte)(dst[len(dst) : len(dst)+sdShortRoom])
				if n := putShortSDParam(b, el.ID, &el.Params[k], &lengths, &last); n >= 0 {
					dst = dst[:len(dst)+n]
					continue
				}
			}
			var r bool
			dst, r = appendSDParamOnce(dst, sd, e, k, &lengths)
			replaced = replaced || r
		}
	}
	return dst, replaced
}

// appendSDParamOnce appends parameter k of element e with appendSDParam
// unless a parameter before it has the same field name.
func appendSDParamOnce(dst []byte, sd []SDElement, e, k int, lengths *uint64) ([]byte, bool) {
	id, p := sd[e].ID, &sd[e].Params[k]
	bit := sdLengthBit(id, p.Name)
	if *lengths&bit != 0 && sdNameSeen(sd, e, k) {
		return dst, false
	}
	*lengths |= bit
	return appendSDParam(dst, id, p.Name, p.Value)
}

// sdLengthBit is the bit of the field name of id and name in the lengths
// of appendStructuredData.
func sdLengthBit(id, name string) uint64 {
	return 1 << (uint(len(id)+len(name)) % 64)
}

// sdShortRoom is the most putShortSDParam writes: an ID and a name of 16
// bytes, and a value of 16 bytes that are all escaped as \u00XX, the last
// escape written as a word.
const sdShortRoom = len(`,"_sd_`) + 16 + 1 + 16 + len(`":"`) + 15*len(`\u0000`) + 8

// putShortSDParam writes parameter p of an element with the given ID as
// ,"_sd_<id>_<name>":"<value>" to the start of b, and returns its length,
// when the ID, name and value are at most 16 bytes long, the value is
// ASCII and the length of the field name is not in lengths (see
// appendStructuredData), which it adds it to. Else it returns -1. last
// is the ID it wrote before, for the parameters of one element. It calls
// nothing, so that it needs no stack frame of its own.
func putShortSDParam(b *[sdShortRoom]byte, id string, p *SDParam, lengths *uint64, last *sdIDText) int {
	name, value := bytesOf(p.Name), bytesOf(p.Value)
	bit := sdLengthBit(id, p.Name)
	if len(id) > 16 || len(name) > 16 || len(value) > 16 || *lengths&bit != 0 {
		return -1
	}
	binary.LittleEndian.PutUint64(b[:8], sdPrefix)
	// The ID as the parameter before wrote it when it had the same
	// string, as the parameters of an element do; else mapped.
	if at := uintptr(unsafe.Pointer(unsafe.StringData(id))); at == last.at && len(id) == last.n {
		*(*[16]byte)(b[6:22]) = last.text
	} else {
		d := b[6 : 6+len(id)]
		for i, c := range bytesOf(id) {
			d[i] = fieldNameByte[c]
		}
		last.at, last.n, last.text = at, len(id), *(*[16]byte)(b[6:22])
	}
	b[6+len(id)] = '_'
	d := b[7+len(id) : 7+len(id)+len(name)]
	for i, c := range name {
		d[i] = fieldNameByte[c]
	}
	size := 7 + len(id) + len(name) + 3
	binary.LittleEndian.PutUint32(b[size-3:], quoteColonQuote)
	n := size + len(value)
	if len(value) > 0 {
		if x, y := loadShort(value); plainShort(x, y, len(value)) {
			storeShort((*[16]byte)(b[size:size+16]), len(value), x, y)
		} else if n = putEscapedASCII(b[size:], value); n < 0 {
			return -1
		} else {
			n += size
		}
	}
	b[n] = '"'
	*lengths |= bit
	return n + 1
}

// sdIDText is an SD-ELEMENT ID as putShortSDParam writes it, which it
// copies for the parameters after the first of an element.
type sdIDText struct {
	// The address and length of the ID: its string header, which the
	// parameters of an element share. An address, not a pointer, as it is
	// only compared while the element is held, and so that keeping it
	// needs no write barrier, a call.
	at   uintptr
	n    int
	text [16]byte // the ID as field name characters, padded
}

// quoteColonQuote is ":" packed in a word, with a byte to overwrite.
var quoteColonQuote = binary.LittleEndian.Uint32([]byte(`":"_`))

// sdNameSeen reports whether a parameter before parameter k of element e
// has the same field name.
func sdNameSeen(sd []SDElement, e, k int) bool {
	id, name := sd[e].ID, sd[e].Params[k].Name
	for e2 := 0; e2 <= e; e2++ {
		params := sd[e2].Params
		if e2 == e {
			params = params[:k]
		}
		id2 := sd[e2].ID
		for _, p := range params {
			if len(id2)+len(p.Name) == len(id)+len(name) && sameFieldName(id2, p.Name, id, name) {
				return true
			}
		}
	}
	return false
}

// sameFieldName reports whether id1_name1 and id2_name2, of the same
// length, give the same field name.
func sameFieldName(id1, name1, id2, name2 string) bool {
	if len(id1) != len(id2) {
		return false // the '_' between them would be at different places
	}
	return sameField(id1, id2) && sameField(name1, name2)
}

// sameField reports whether a and b, of the same length, are the same once
// cut to field name characters.
func sameField(a, b string) bool {
	if a == b {
		return true
	}
	for i := range len(a) {
		if fieldNameByte[a[i]] != fieldNameByte[b[i]] {
			return false
		}
	}
	return true
}

// appendSDParam appends ,"_sd_<id>_<name>":"<value>".
func appendSDParam(dst []byte, id, name, value string) ([]byte, bool) {
	// The name, then room for a short value and its closing quote.
	size := len(`,"_sd_`) + len(id) + 1 + len(name) + len(`":"`)
	room := size + 16 + 1
	if cap(dst)-len(dst) < room {
		dst = slices.Grow(dst, room)
	}
	out := dst[len(dst) : len(dst)+room]
	binary.LittleEndian.PutUint64(out[:8], sdPrefix) // 2 bytes too many, overwritten below
	putFieldName(out[6:], id)
	out[6+len(id)] = '_'
	putFieldName(out[7+len(id):], name)
	out[size-3], out[size-2], out[size-1] = '"', ':', '"'
	v := bytesOf(value)
	if len(v) > 16 {
		dst, r := appendLongBody(dst[:len(dst)+size], v)
		return append(dst, '"'), r
	}
	if !putShortPlain((*[16]byte)(out[size:size+16]), v) {
		// Straight to the escaper: appendBody would check v again.
		dst, r := appendEscaped(dst[:len(dst)+size], v)
		return append(dst, '"'), r
	}
	out[size+len(v)] = '"'
	return dst[:len(dst)+size+len(v)+1], false
}

// sdPrefix is ,"_sd_ packed in a word.
var sdPrefix = binary.LittleEndian.Uint64([]byte(`,"_sd___`))

// putFieldName writes s to the start of b with every byte GELF does not
// allow in a field name (outside [A-Za-z0-9_.-]) replaced by '_'.
func putFieldName(b []byte, s string) {
	src := bytesOf(s)
	b = b[:len(src)]
	for i, c := range src {
		b[i] = fieldNameByte[c]
	}
}

// fieldNameByte maps each byte to itself when GELF allows it in field
// names, else to '_'.
var fieldNameByte = func() (t [256]byte) {
	for c := range t {
		t[c] = '_'
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' {
			t[c] = byte(c)
		}
	}
	return t
}()
