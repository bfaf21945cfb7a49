package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logviewer/logviewer/internal/testsupport"
)

func TestRedisSubscriberCountsPublishedLines(t *testing.T) {
	srv := testsupport.StartRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	s := newSubscriber(subRedis, redisTarget(srv.URL(), "lbt.*"), "run7", false, nil)
	go s.run(ctx, nil)
	select {
	case <-s.connected:
	case <-s.done:
		t.Fatalf("subscriber ended: %v", s.err)
	case <-time.After(10 * time.Second):
		t.Fatal("not subscribed after 10s")
	}

	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	publish := func(channel, msg string) {
		t.Helper()
		if err := c.Publish(ctx, channel, msg).Err(); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	now := time.Now().UnixNano()
	publish("lbt.a", fmt.Sprintf(`{"short_message":"lb r=run7 c=0 s=0 t=%d"}`, now))
	for seq := 0; seq < 100; seq++ {
		if seq == 50 {
			continue // lost
		}
		publish("lbt.a", fmt.Sprintf(`{"version":"1.1","short_message":" lb r=run7 c=1 s=%d t=%d","_group":"lr"}`, seq, now))
	}
	publish("lbt.b", fmt.Sprintf(`{"short_message":"lb r=run7 c=1 s=10 t=%d"}`, now))  // duplicate
	publish("lbt.b", `{"short_message":"lb r=other c=1 s=200 t=1"}`)                   // another run
	publish("elsewhere", `{"short_message":"lb r=run7 c=1 s=300 t=1"}`)                // pattern does not match
	publish("lbt.c", string(make([]byte, 300<<10)))                                    // a payload larger than the read buffer
	publish("lbt.c", fmt.Sprintf(`{"short_message":"lb r=run7 c=1 s=99 t=%d"}`, now))  // dup after the big one
	publish("lbt.c", fmt.Sprintf(`{"short_message":"lb r=run7 c=1 s=100 t=%d"}`, now)) // last: all before it were read

	testsupport.Eventually(t, 10*time.Second, func() bool { return s.got.Load() == 100 && s.ready.Load() },
		"subscriber got %d lines, ready %v", func() any { return s.got.Load() }, func() any { return s.ready.Load() })
	cancel()
	<-s.done
	r := s.result([]uint64{101})
	if r.err != nil {
		t.Errorf("subscriber error: %v", r.err)
	}
	if r.got != 100 || r.loss.Lost != 1 || r.loss.Gaps != 1 || r.dups != 2 || r.hist.total != 100 {
		t.Errorf("result got %d lost %+v dups %d latencies %d", r.got, r.loss, r.dups, r.hist.total)
	}
}

func TestRedisSubscriberReportsBadURL(t *testing.T) {
	s := newSubscriber(subRedis, redisTarget("http://nope", "*"), "r", false, nil)
	s.run(context.Background(), nil)
	if s.err == nil {
		t.Fatal("no error for a non-Redis URL")
	}
}
