package publish

import (
	"sync"
	"time"
)

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
		c = &channelStat{first: now.Unix()}
		s.channels[channel] = c
	}
	c.count++
	c.lastSeen = now
	c.rate.add(now.Unix())
	s.mu.Unlock()
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
