package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// scaleLines sends, over one TCP connection to addr, count lines of each
// app in apps, numbered from 0 per app, interleaved.
func scaleLines(t *testing.T, addr string, apps []string, from, to int) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	for i := from; i < to; i++ {
		for _, app := range apps {
			fmt.Fprintf(&b, "<14>%s: %s line %d\n", app, app, i)
		}
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// scaleRecords reads n records from s and returns, per channel, the line
// numbers in the order they came, and the event IDs.
func scaleRecords(t *testing.T, s *testsupport.SSEStream, n int) (map[string][]int, map[string][]string) {
	t.Helper()
	nums, ids := map[string][]int{}, map[string][]string{}
	for range n {
		ev := s.NextRecord(t, recordTimeout)
		f := ev.Fields(t)
		ch, _ := f["_channel"].(string)
		var app string
		var i int
		if _, err := fmt.Sscanf(f["short_message"].(string), "%s line %d", &app, &i); err != nil || app != ch {
			t.Fatalf("record %s on channel %s", ev.Data, ch)
		}
		nums[ch] = append(nums[ch], i)
		ids[ch] = append(ids[ch], ev.ID)
	}
	return nums, ids
}

// TestRedisScaleOutNodes: two ingest and two stream daemons over two
// standalone Redis shards, and over a Redis Cluster of three masters: every
// line reaches both stream nodes once, in order per channel, and a client
// resumes a channel on the other stream node with no gap or duplicate.
func TestRedisScaleOutNodes(t *testing.T) {
	for _, tc := range scaleOutSetups {
		t.Run(tc.name, func(t *testing.T) {
			flags := tc.start(t)
			node := func(role string, args ...string) *testsupport.Daemon {
				d := testsupport.StartDaemon(t, append(append([]string{"--role=" + role, "--dns=false", "--channel-from=app"}, flags...), args...)...)
				redisWaitHealth(t, d, "ok")
				return d
			}
			in1, in2 := node("ingest"), node("ingest")
			s1, s2 := node("stream"), node("stream")
			all1 := testsupport.OpenSSE(t, s1.HTTPURL+"/sse/*")
			all2 := testsupport.OpenSSE(t, s2.HTTPURL+"/sse/app-*")

			apps1, apps2 := []string{"app-a", "app-b", "app-c"}, []string{"app-d", "app-e", "app-f"}
			const per = 200
			scaleLines(t, in1.SyslogAddr, apps1, 0, per)
			scaleLines(t, in2.SyslogAddr, apps2, 0, per)
			want := make([]int, per)
			for i := range want {
				want[i] = i
			}
			var ids map[string][]string
			for k, s := range []*testsupport.SSEStream{all1, all2} {
				nums, got := scaleRecords(t, s, 6*per)
				for _, app := range append(apps1, apps2...) {
					if !slices.Equal(nums[app], want) {
						t.Errorf("stream node %d, %s: %v", k+1, app, nums[app])
					}
				}
				if k == 0 {
					ids = got
				}
			}

			// A client of node 1 reading app-a breaks off after line 99 and
			// resumes on node 2.
			r := testsupport.OpenSSE(t, s2.HTTPURL+"/sse/app-a", "Last-Event-ID: "+ids["app-a"][99])
			scaleLines(t, in1.SyslogAddr, apps1[:1], per, per+10)
			nums, _ := scaleRecords(t, r, per-100+10)
			if w := append(want[100:], seqTo(per, per+10)...); !slices.Equal(nums["app-a"], w) {
				t.Errorf("resumed on node 2: %v, want %v", nums["app-a"], w)
			}
		})
	}
}

// seqTo returns from..to-1.
func seqTo(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// healthBody reads the daemon's /healthz body.
func healthBody(t *testing.T, d *testsupport.Daemon) (status, errText string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(d.HTTPURL + "/healthz")
	if err != nil {
		return "", err.Error()
	}
	defer resp.Body.Close()
	var h struct{ Status, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return "", err.Error()
	}
	return h.Status, h.Error
}

// TestRedisShardStopped: of two shards, one stops for 5 s. The ingest
// node's /healthz names that shard, the other shard's channels keep
// streaming, and the stopped shard's lines arrive once it is back.
func TestRedisShardStopped(t *testing.T) {
	a, b := testsupport.StartRedis(t), testsupport.StartRedis(t)
	flags := []string{"--redis=" + a.URL() + "," + b.URL(), "--dns=false", "--channel-from=app"}
	ingest := testsupport.StartDaemon(t, append([]string{"--role=ingest"}, flags...)...)
	stream := testsupport.StartDaemon(t, append([]string{"--role=stream"}, flags...)...)
	redisWaitHealth(t, ingest, "ok")
	redisWaitHealth(t, stream, "ok")

	// One app per shard: the shard of a channel follows from its name, so
	// the test finds one on each by asking Redis where records went.
	apps := []string{"app-0", "app-1", "app-2", "app-3", "app-4", "app-5", "app-6", "app-7"}
	sse := testsupport.OpenSSE(t, stream.HTTPURL+"/sse/*")
	scaleLines(t, ingest.SyslogAddr, apps, 0, 1)
	scaleRecords(t, sse, len(apps))
	var onA, onB string
	for _, app := range apps {
		n, _ := a.Client(t).Exists(t.Context(), "logviewer:stream:"+app).Result()
		if n == 1 && onA == "" {
			onA = app
		} else if n == 0 && onB == "" {
			onB = app
		}
	}
	if onA == "" || onB == "" {
		t.Fatalf("apps not spread over both shards: %q on %s, %q on %s", onA, a.Addr(), onB, b.Addr())
	}

	b.Stop(t)
	stopped := time.Now()
	i := 1
	for ; time.Since(stopped) < 5*time.Second; i++ {
		scaleLines(t, ingest.SyslogAddr, []string{onA, onB}, i, i+1)
		nums, _ := scaleRecords(t, sse, 1) // onA's line, while onB's shard is down
		if got := nums[onA]; len(got) != 1 || got[0] != i {
			t.Fatalf("while %s is down: got %v, want %s line %d", b.Addr(), nums, onA, i)
		}
		time.Sleep(50 * time.Millisecond)
	}
	status, errText := healthBody(t, ingest)
	if status != "degraded" || !strings.Contains(errText, b.Addr()) || strings.Contains(errText, a.Addr()) {
		t.Errorf("ingest healthz with %s down: %s %q; want degraded naming that shard only", b.Addr(), status, errText)
	}
	b.Start(t)
	nums, _ := scaleRecords(t, sse, i-1)
	if w := seqTo(1, i); !slices.Equal(nums[onB], w) {
		t.Errorf("%s once its shard is back: %v, want %v", onB, nums[onB], w)
	}
	redisWaitHealth(t, ingest, "ok")
}

// scaleOutSetups are the multi-Redis deployments the scale-out tests run
// on: two standalone shards and a Redis Cluster of three masters, each
// started by the test and given to the daemons as their Redis flags.
var scaleOutSetups = []struct {
	name  string
	start func(t *testing.T) []string // the daemons' Redis flags
}{
	{"two shards", func(t *testing.T) []string {
		a, b := testsupport.StartRedis(t), testsupport.StartRedis(t)
		return []string{"--redis=" + a.URL() + "," + b.URL()}
	}},
	{"cluster of three masters", func(t *testing.T) []string {
		c := testsupport.StartRedisCluster(t, 3)
		return []string{"--redis=" + c.URLs(), "--redis-cluster"}
	}},
}
