package publish

import (
	"strconv"
	"strings"
	"sync"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// keySlot is the hash slot of a Redis Cluster key: CRC16 (XMODEM) of its
// hash tag (what is between the first '{' and the next '}', when not
// empty), else of the whole key, modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % clusterSlots)
}

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slotTags returns, for every hash slot, a short hash tag that maps to it:
// the batch notification of a channel goes to the shard channel tagged with
// its slot, so that it is in the slot of the channel's keys (SPUBLISH in the
// channel's transaction) and a stream node subscribes to a fixed set of
// shard channels, whatever channels come and go.
var slotTags = sync.OnceValue(func() []string {
	tags := make([]string, clusterSlots)
	left := clusterSlots
	for i := 0; left > 0; i++ {
		s := strconv.Itoa(i)
		if slot := crc16(s) % clusterSlots; tags[slot] == "" {
			tags[slot] = s
			left--
		}
	}
	return tags
})
