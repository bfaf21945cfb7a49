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

// clusterBuckets is the number of ID sequences of a Redis Cluster: every
// channel belongs to one bucket (see bucketOf), whose hash tag all its keys
// carry. A bucket's channels take their record IDs from the bucket's one
// sequence, so a resume token names a position in each of a fixed, small
// number of sequences, as it does per standalone shard (see
// redis_resume.go), and the buckets spread over the masters as their slots
// do.
const clusterBuckets = 16

// bucketOf returns the bucket of a cluster channel: FNV-1a of its name
// modulo clusterBuckets (see shardIndex).
func bucketOf(channel string) int { return shardIndex(channel, clusterBuckets) }

// bucketTags holds the hash tag of each bucket: for bucket k the first
// "lvb<k>-<n>" whose slot is in the k-th of clusterBuckets equal slot
// ranges, so that the buckets spread evenly over the slots.
var bucketTags = func() [clusterBuckets]string {
	var tags [clusterBuckets]string
	width := clusterSlots / clusterBuckets
	for k := range tags {
		// One tag in 16 lands in the range: a few dozen tries at most.
		for n := 0; n < 1<<16 && tags[k] == ""; n++ {
			tag := "lvb" + strconv.Itoa(k) + "-" + strconv.Itoa(n)
			if slot := int(crc16(tag) % clusterSlots); slot >= k*width && slot < (k+1)*width {
				tags[k] = tag
			}
		}
		if tags[k] == "" {
			panic("publish: no hash tag for cluster bucket " + strconv.Itoa(k))
		}
	}
	return tags
}()

// bucketSlot returns the hash slot of a bucket's keys.
func bucketSlot(bucket int) int { return int(crc16(bucketTags[bucket]) % clusterSlots) }
