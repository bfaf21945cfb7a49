package main

import (
	"math/bits"
	"time"
)

// Latency histogram: log-linear buckets as HdrHistogram keeps them. Values
// below histSub are exact; above, each power of two is split into
// histSub/2 buckets, so a bucket's width is under 1/64 of its value and
// percentiles are within about 1 % (a bucket reports its midpoint).
const (
	histSub      = 128
	histHalf     = histSub / 2
	histMaxShift = 36 // values up to 2^(36+7) ns, about 2.4 hours
	histBuckets  = histSub + histMaxShift*histHalf
)

// histogram counts durations in nanoseconds. The zero value is ready.
// Adding is a few instructions and never allocates.
type histogram struct {
	counts [histBuckets]uint32
	total  uint64
	max    int64
	sum    float64
}

// bucketOf returns the bucket index of v (>= 0).
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - 7 // v>>shift is in [64, 128)
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return histSub + (shift-1)*histHalf + int(v>>shift) - histHalf
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (low, width uint64) {
	if i < histSub {
		return uint64(i), 1
	}
	j := i - histSub
	shift := j/histHalf + 1
	return uint64(j%histHalf+histHalf) << shift, 1 << shift
}

// add counts one duration; negative ones (clock steps) count as zero.
func (h *histogram) add(d int64) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.total++
	h.sum += float64(d)
	if d > h.max {
		h.max = d
	}
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the duration below which a fraction q (0..1) of the
// values lie, as the midpoint of the bucket that holds it; the top
// quantile is the exact maximum.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank >= h.total {
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			low, width := bucketRange(i)
			v := int64(low + width/2)
			if width == 1 {
				v = int64(low)
			}
			return time.Duration(min(v, h.max))
		}
	}
	return time.Duration(h.max)
}

// mean returns the average duration.
func (h *histogram) mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}
