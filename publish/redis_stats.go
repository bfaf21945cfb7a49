package publish

import (
	"slices"
	"sync"
	"time"
)

// maxChannelStats bounds the channels a stream node keeps counts of: any
// sender can name new channels (a host, --channel-from app). Past it the
// eighth seen least recently are forgotten; they come back, counted anew,
// with their next record.
const maxChannelStats = maxChannelCache

// channelStats counts what a stream node received per channel, for
// Channels. The pub/sub reader adds; Channels reads.
type channelStats struct {
	mu       sync.Mutex
	channels map[string]*channelStat
}

type channelStat struct {
	count    uint64
	first    int64 // Unix second of the first record seen
	lastSeen time.Time
	rate     rateWindow
}

func newChannelStats() *channelStats {
	return &channelStats{channels: make(map[string]*channelStat)}
}

// add counts one record of channel received at now.
func (s *channelStats) add(channel string, now time.Time) {
	s.mu.Lock()
	c, ok := s.channels[channel]
	if !ok {
		if len(s.channels) >= maxChannelStats {
			s.forgetOldestLocked(maxChannelStats / 8)
		}
		c = &channelStat{first: now.Unix()}
		s.channels[channel] = c
	}
	c.count++
	c.lastSeen = now
	c.rate.add(now.Unix())
	s.mu.Unlock()
}

// forgetOldestLocked forgets the n channels seen least recently. s.mu is
// held. It runs once per n new channels past the bound.
func (s *channelStats) forgetOldestLocked(n int) {
	type seen struct {
		name string
		at   time.Time
	}
	all := make([]seen, 0, len(s.channels))
	for name, c := range s.channels {
		all = append(all, seen{name, c.lastSeen})
	}
	slices.SortFunc(all, func(a, b seen) int { return a.at.Compare(b.at) })
	for _, c := range all[:min(n, len(all))] {
		delete(s.channels, c.name)
	}
}

// snapshot returns the channels seen so far, unsorted.
func (s *channelStats) snapshot(now time.Time) []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ChannelInfo, 0, len(s.channels))
	for name, c := range s.channels {
		out = append(out, ChannelInfo{
			Name:     name,
			Count:    c.count,
			LastSeen: c.lastSeen.UTC(),
			Rate:     c.rate.perSecond(now.Unix(), c.first),
		})
	}
	return out
}
