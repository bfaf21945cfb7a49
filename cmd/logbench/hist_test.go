package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func TestBucketCoversValue(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<20 + 1, 1<<42 - 1}
	for i := 0; i < 10000; i++ {
		values = append(values, r.Uint64N(1<<42))
	}
	prev := -1
	sort.Slice(values, func(i, j int) bool { return values[i] < values[j] })
	for _, v := range values {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d, below the bucket of a smaller value (%d)", v, b, prev)
		}
		prev = b
		low, width := bucketRange(b)
		if v < low || v >= low+width {
			t.Fatalf("bucketOf(%d) = %d covers [%d, %d)", v, b, low, low+width)
		}
		if v >= histSub && float64(width)/float64(v) > 1.0/64 {
			t.Fatalf("bucket %d of %d is %d wide: over 1/64", b, v, width)
		}
	}
	if b := bucketOf(math.MaxUint64); b != histBuckets-1 {
		t.Errorf("bucketOf(max) = %d, want the last bucket %d", b, histBuckets-1)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{name: "empty", q: 0.99, want: 0},
		{name: "single", values: []time.Duration{3 * time.Millisecond}, q: 0.5, want: 3 * time.Millisecond},
		{name: "max is exact", values: []time.Duration{time.Millisecond, 7777777}, q: 1, want: 7777777},
		{name: "negative counts as zero", values: []time.Duration{-5, -6}, q: 0.5, want: 0},
		{name: "small exact", values: []time.Duration{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, q: 0.9, want: 90},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			for _, v := range tc.values {
				h.add(int64(v))
			}
			if got := h.quantile(tc.q); got != tc.want {
				t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func TestHistogramMatchesSortedSample(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h histogram
	sample := make([]int64, 200000)
	for i := range sample {
		// Log-normal around 1 ms with a long tail, as latencies are.
		v := int64(math.Exp(r.NormFloat64()*1.2) * float64(time.Millisecond))
		sample[i] = v
		h.add(v)
	}
	sort.Slice(sample, func(i, j int) bool { return sample[i] < sample[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := float64(sample[int(q*float64(len(sample)))-1])
		got := float64(h.quantile(q))
		if math.Abs(got-exact)/exact > 0.02 {
			t.Errorf("p%v = %v, sorted sample says %v: over 2%% off", q*100, time.Duration(got), time.Duration(exact))
		}
	}
	if h.max != sample[len(sample)-1] {
		t.Errorf("max = %d, want %d", h.max, sample[len(sample)-1])
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, both histogram
	for i := int64(1); i <= 1000; i++ {
		v := i * int64(time.Microsecond)
		if i%2 == 0 {
			a.add(v)
		} else {
			b.add(v)
		}
		both.add(v)
	}
	a.merge(&b)
	if a != both {
		t.Fatalf("merged histogram differs from one fed all values")
	}
	if a.total != 1000 || a.max != 1000*int64(time.Microsecond) {
		t.Errorf("total %d max %d", a.total, a.max)
	}
	if m := a.mean(); m != 500500*time.Nanosecond {
		t.Errorf("mean = %v, want 500.5µs", m)
	}
}

func TestHistogramAddDoesNotAllocate(t *testing.T) {
	h := &histogram{}
	allocs := testing.AllocsPerRun(1000, func() { h.add(123456) })
	if allocs != 0 {
		t.Errorf("add allocates %v times", allocs)
	}
}
