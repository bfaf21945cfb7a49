package publish

import (
	"strconv"
	"testing"
	"time"
)

// TestChannelStatsBounded: a stream node counting records of ever new
// channels keeps at most maxChannelStats of them, forgetting those seen
// least recently first.
func TestChannelStatsBounded(t *testing.T) {
	s := newChannelStats()
	start := time.Unix(1764000000, 0)
	for i := range maxChannelStats + 1 {
		s.add("ch-"+strconv.Itoa(i), start.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(s.channels); n > maxChannelStats {
		t.Fatalf("%d channels kept, bound %d", n, maxChannelStats)
	}
	if _, ok := s.channels["ch-0"]; ok {
		t.Errorf("the channel seen least recently is still kept")
	}
	if c, ok := s.channels["ch-"+strconv.Itoa(maxChannelStats)]; !ok || c.count != 1 {
		t.Errorf("the newest channel is not counted")
	}
}

// TestReaderPositionsBounded: a reader's per-channel positions stay within
// maxChannelCache however many channels a sender names; the oldest go
// first, and a kept channel's duplicate is still refused.
func TestReaderPositionsBounded(t *testing.T) {
	rd := &redisReader{lastID: make(map[string]position)}
	for i := range maxChannelCache + 1 {
		if !rd.advance("ch-"+strconv.Itoa(i), position{ms: 1764000000000 + uint64(i)}) {
			t.Fatalf("record %d refused", i)
		}
	}
	if n := len(rd.lastID); n > maxChannelCache {
		t.Fatalf("%d positions kept, bound %d", n, maxChannelCache)
	}
	if _, ok := rd.lastID["ch-0"]; ok {
		t.Errorf("the oldest position is still kept")
	}
	newest := "ch-" + strconv.Itoa(maxChannelCache)
	if rd.advance(newest, position{ms: 1764000000000 + uint64(maxChannelCache)}) {
		t.Errorf("a duplicate of the newest channel's record was taken")
	}
	if rd.lastAny != (position{ms: 1764000000000 + uint64(maxChannelCache)}) {
		t.Errorf("lastAny %v", rd.lastAny)
	}
}
