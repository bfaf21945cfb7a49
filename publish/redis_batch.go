package publish

import (
	"errors"
	"strconv"
	"strings"
)

// The batched Redis layout moves records between ingest and stream nodes in
// batches. An ingest node's flush writes, per channel, one stream entry
// holding all of that channel's records of the flush, and publishes one
// notification per flush and shard carrying every entry written.
//
// A batch blob is records one after the other, each "<off>,<len>:<GELF
// object>" (decimal; off is the record's position in the flush counted from
// the entry's first record, len its bytes). A stream entry holds fields n (record count) and
// b (the blob). The notification is
//
//	LVB1\n<echo>\n then per entry: <channel>\n<entry ID>\n<n>\n<blob len>\n<blob>
//
// where echo is how many per-record PUBLISHes (--redis-publish-records)
// follow it on the same connection: a stream node skips them, having the
// records from the notification already.
//
// A record at offset off of an entry <ms>-<seq> has the event ID
// <ms>-<seq+off>: the writer (writeFlush) reserves one number of the shard's
// (a cluster bucket's) ID sequence per record of the flush, in publish order, and an entry's ID is
// that of its first record. Record IDs are thus unique and increase in
// publish order across the channels of a shard, and every stream node
// derives the same IDs.

// batchMagic starts every batch notification.
const batchMagic = "LVB1\n"

// errBadBatch is a batch notification or blob that does not parse.
var errBadBatch = errors.New("malformed batch")

// appendBlobRecord appends one record at offset off to a batch blob.
func appendBlobRecord(blob []byte, off int, gelf []byte) []byte {
	blob = strconv.AppendInt(blob, int64(off), 10)
	blob = append(blob, ',')
	blob = strconv.AppendInt(blob, int64(len(gelf)), 10)
	blob = append(blob, ':')
	return append(blob, gelf...)
}

// eachBlobRecord calls fn with every record of a blob, in order. It stops at
// the first malformed record and returns errBadBatch.
func eachBlobRecord(blob string, fn func(off uint64, gelf string)) error {
	for len(blob) > 0 {
		comma := strings.IndexByte(blob, ',')
		colon := strings.IndexByte(blob, ':')
		if comma <= 0 || colon <= comma+1 {
			return errBadBatch
		}
		off, err1 := strconv.ParseUint(blob[:comma], 10, 64)
		n, err2 := strconv.Atoi(blob[comma+1 : colon])
		if err1 != nil || err2 != nil || n < 0 || n > len(blob)-colon-1 {
			return errBadBatch
		}
		fn(off, blob[colon+1:colon+1+n])
		blob = blob[colon+1+n:]
	}
	return nil
}

// batchEntry is one channel's entry of a batch notification.
type batchEntry struct {
	channel string
	id      position // the entry ID: the ID of its first record
	n       int
	blob    string
}

// parseBatch splits a batch notification into the echo count and its
// entries.
func parseBatch(payload string) (echo int, entries []batchEntry, err error) {
	if !strings.HasPrefix(payload, batchMagic) {
		return 0, nil, errBadBatch
	}
	rest := payload[len(batchMagic):]
	field := func() (string, bool) {
		i := strings.IndexByte(rest, '\n')
		if i < 0 {
			return "", false
		}
		f := rest[:i]
		rest = rest[i+1:]
		return f, true
	}
	f, ok := field()
	if echo, err = strconv.Atoi(f); !ok || err != nil {
		return 0, nil, errBadBatch
	}
	for len(rest) > 0 {
		ch, ok1 := field()
		idStr, ok2 := field()
		nStr, ok3 := field()
		lenStr, ok4 := field()
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return 0, nil, errBadBatch
		}
		id, okID := parseStreamID(idStr)
		n, errN := strconv.Atoi(nStr)
		size, errS := strconv.Atoi(lenStr)
		if !okID || errN != nil || errS != nil || size < 0 || size > len(rest) {
			return 0, nil, errBadBatch
		}
		entries = append(entries, batchEntry{channel: ch, id: id, n: n, blob: rest[:size]})
		rest = rest[size:]
	}
	return echo, entries, nil
}

// batchRecord is the Record of one GELF object of a batch.
func batchRecord(channel string, id position, gelf string) Record {
	rest := ""
	if len(gelf) > 1 {
		rest = gelf[1:] // after the '{'
		if strings.TrimLeft(rest, " \t\r\n") == "}" {
			rest = ""
		}
	}
	var text [2*20 + 1]byte // two 64-bit numbers and a dash
	return eventRecord(id.appendTo(text[:0]), channel, rest)
}

// add returns the ID n records after a within one entry.
func (a position) add(n uint64) position { return position{ms: a.ms, seq: a.seq + n} }

// BatchChannel is the pub/sub channel, after the channel prefix, on which
// ingest nodes publish their batch notifications.
const BatchChannel = "logviewer:batch"

// EachBatchRecord calls fn with the channel and GELF object of every record
// of a batch notification, in the order it holds them, for tools that read
// Redis themselves (logbench counts records this way).
func EachBatchRecord(payload string, fn func(channel, gelf string)) error {
	_, entries, err := parseBatch(payload)
	if err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		if err := eachBlobRecord(e.blob, func(_ uint64, gelf string) { fn(e.channel, gelf) }); err != nil {
			return err
		}
	}
	return nil
}
