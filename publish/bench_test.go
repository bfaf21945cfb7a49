package publish

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/glob"
	"github.com/logviewer/logviewer/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

var benchGELF = []byte(`{"version":"1.1","host":"logs","short_message":"GET /api/items 200 12ms user=42 agent=curl/8.5","timestamp":1700000000.123,"level":6,"_app_name":"web-1","_group":"lr","_facility":"user","_app":"api","_procid":"1234"}`)

// BenchmarkMemoryPublish measures Publish with subs subscribers on "*",
// each drained by its own goroutine (ns/op is per record, whatever the
// number of subscribers). drops/op is the share of deliveries lost because a
// drainer fell behind.
func BenchmarkMemoryPublish(b *testing.B) {
	for _, subs := range []int{0, 1, 100} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			met := metrics.New(prometheus.NewRegistry())
			m := NewMemory(MemoryConfig{History: 10000, Metrics: met})
			var wg sync.WaitGroup
			for i := 0; i < subs; i++ {
				s, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
				if err != nil {
					b.Fatal(err)
				}
				drain(&wg, s, nil)
			}
			channels := []string{"web-1", "web-2", "db-1", "cache-1"}
			ctx := context.Background()
			b.SetBytes(int64(len(benchGELF)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := m.Publish(ctx, channels[i&3], benchGELF); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			m.Close()
			wg.Wait()
			if subs > 0 {
				b.ReportMetric(readCounter(b, met.Dropped.WithLabelValues(metrics.DropSlowSubscriber))/float64(b.N*subs), "drops/delivery")
			}
		})
	}
}

// BenchmarkMemoryPublishBatch measures PublishBatch of 64 records of one
// channel, as ingest hands over one read of a busy connection, with subs
// drained subscribers on "*" (ns/op is per record).
func BenchmarkMemoryPublishBatch(b *testing.B) {
	const perBatch = 64
	for _, subs := range []int{0, 1} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			met := metrics.New(prometheus.NewRegistry())
			m := NewMemory(MemoryConfig{History: 10000, Metrics: met})
			var wg sync.WaitGroup
			for range subs {
				s, err := m.Subscribe(context.Background(), "*", SubscribeOptions{})
				if err != nil {
					b.Fatal(err)
				}
				drain(&wg, s, nil)
			}
			batch := func(yield func(string, []byte) bool) {
				for range perBatch {
					if !yield("web-1", benchGELF) {
						return
					}
				}
			}
			ctx := context.Background()
			b.SetBytes(int64(len(benchGELF)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += perBatch {
				if err := m.PublishBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			m.Close()
			wg.Wait()
		})
	}
}

// BenchmarkFanoutDeliver measures handing one record to subs queues that
// nobody reads (the steady state of full queues: drop-oldest).
func BenchmarkFanoutDeliver(b *testing.B) {
	for _, subs := range []int{1, 100} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			f := newFanout(nil)
			for i := 0; i < subs; i++ {
				if _, err := f.subscribe("web-*", nil, SubscribeOptions{QueueSize: 64}); err != nil {
					b.Fatal(err)
				}
			}
			rec := Record{Channel: "web-1", ID: "1-1", JSON: benchGELF}
			b.ReportAllocs()
			for b.Loop() {
				f.deliver(rec)
			}
			f.close()
		})
	}
}

func BenchmarkAnnotateJSON(b *testing.B) {
	dst := make([]byte, 0, 1024)
	b.SetBytes(int64(len(benchGELF)))
	b.ReportAllocs()
	for b.Loop() {
		dst = AnnotateJSON(dst[:0], "1700000000000-123456", "web-1", benchGELF)
	}
}

func BenchmarkGlobMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		glob.Match("web-[0-9]*-prod*", "web-12-prod-eu-west")
	}
}

// BenchmarkFanoutReaders measures handing records to subscribers that read
// them as they come, each on its own goroutine: the fan-out's steady state
// with healthy clients. ns/record/sub is the figure to read.
func BenchmarkFanoutReaders(b *testing.B) {
	for _, subs := range []int{10, 100} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			f := newFanout(nil)
			var wg sync.WaitGroup
			var got atomic.Int64
			for i := 0; i < subs; i++ {
				s, err := f.subscribe("web-*", nil, SubscribeOptions{QueueSize: 1 << 16})
				if err != nil {
					b.Fatal(err)
				}
				drain(&wg, s, &got)
			}
			rec := Record{Channel: "web-1", ID: "1-1", JSON: benchGELF}
			start := time.Now()
			for b.Loop() {
				f.deliver(rec)
			}
			want := int64(b.N) * int64(subs)
			for got.Load() < want && time.Since(start) < time.Minute {
				time.Sleep(100 * time.Microsecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(want), "ns/record/sub")
			f.close()
			wg.Wait()
		})
	}
}

// drain reads s on a goroutine of its own (counted by wg) until it ends,
// adding the events it takes to got when got is not nil.
func drain(wg *sync.WaitGroup, s Subscription, got *atomic.Int64) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]Event, 0, 256)
		for {
			evs, err := s.Next(context.Background(), buf[:0])
			if got != nil {
				got.Add(int64(len(evs)))
			}
			if err != nil {
				return
			}
		}
	}()
}
