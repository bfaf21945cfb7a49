package testsupport

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisCluster is a Redis Cluster started for one test on free loopback
// ports: masters only, or masters with replicas.
type RedisCluster struct {
	Nodes []*Redis
}

// RedisClusterOptions shape a test's Redis Cluster.
type RedisClusterOptions struct {
	// Masters is the number of masters; the slots are split evenly among
	// them in the order of Nodes.
	Masters int
	// Replicas is the number of replicas of each master (0: none).
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a master is
	// unreachable before it is failed over (0: 2s).
	NodeTimeout time.Duration
}

// clusterBusOffset is how far above its port a cluster node's bus listens.
const clusterBusOffset = 10000

// StartRedisCluster starts n redis-server nodes with cluster mode on,
// joins them with redis-cli --cluster create as n masters, waits until
// every node says the cluster is ok, and stops them when the test ends.
func StartRedisCluster(tb testing.TB, n int) *RedisCluster {
	tb.Helper()
	return StartRedisClusterWith(tb, RedisClusterOptions{Masters: n})
}

// StartRedisClusterWith is StartRedisCluster with opts: its masters come
// first in Nodes; it also waits until every replica has synced with its
// master.
func StartRedisClusterWith(tb testing.TB, opts RedisClusterOptions) *RedisCluster {
	tb.Helper()
	bin := RequireBinary(tb, "redis-server")
	cli := RequireBinary(tb, "redis-cli")
	timeout := opts.NodeTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	rc := &RedisCluster{}
	var addrs []string
	for range opts.Masters * (1 + opts.Replicas) {
		dir := tb.TempDir()
		r := &Redis{
			bin:  bin,
			dir:  dir,
			port: clusterPort(tb),
			extra: []string{"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", strconv.FormatInt(timeout.Milliseconds(), 10)},
		}
		r.Start(tb)
		tb.Cleanup(func() { r.stop() })
		rc.Nodes = append(rc.Nodes, r)
		addrs = append(addrs, r.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// redis-cli makes the first Masters nodes masters and gives the others
	// to them as replicas.
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, r := range rc.Nodes {
		c := r.Client(tb)
		Eventually(tb, 20*time.Second, func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		}, "redis cluster node %s: state not ok", r.Addr())
	}
	if opts.Replicas > 0 {
		for _, r := range rc.Nodes {
			c := r.Client(tb)
			Eventually(tb, 20*time.Second, func() bool {
				info, err := c.Info(context.Background(), "replication").Result()
				return err == nil && (strings.Contains(info, "role:master") ||
					strings.Contains(info, "master_link_status:up") && !strings.Contains(info, "master_sync_in_progress:1"))
			}, "redis cluster node %s: replica not in sync", r.Addr())
		}
	}
	return rc
}

// URLs returns the nodes' URLs, comma-separated.
func (c *RedisCluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, r := range c.Nodes {
		urls[i] = r.URL()
	}
	return strings.Join(urls, ",")
}

// Node returns the node listening on addr (host:port), or nil.
func (c *RedisCluster) Node(addr string) *Redis {
	for _, r := range c.Nodes {
		if r.Addr() == addr {
			return r
		}
	}
	return nil
}

// MasterOf returns the node that serves slot as master, as the first
// running node that answers sees it, or nil when none answers.
func (c *RedisCluster) MasterOf(slot int) *Redis {
	for _, r := range c.Nodes {
		if !r.running() {
			continue
		}
		slots, err := oneShot(r, func(ctx context.Context, rc *redis.Client) ([]redis.ClusterSlot, error) {
			return rc.ClusterSlots(ctx).Result()
		})
		if err != nil {
			continue
		}
		for _, s := range slots {
			if slot >= s.Start && slot <= s.End && len(s.Nodes) > 0 {
				return c.Node(s.Nodes[0].Addr)
			}
		}
		return nil
	}
	return nil
}

// WaitReplicated waits until every running replica of master has received
// all master wrote so far (its replication offset), so that killing master
// then loses nothing.
func (c *RedisCluster) WaitReplicated(tb testing.TB, master *Redis, timeout time.Duration) {
	tb.Helper()
	info := func(r *Redis) string {
		s, _ := oneShot(r, func(ctx context.Context, rc *redis.Client) (string, error) {
			return rc.Info(ctx, "replication").Result()
		})
		return s
	}
	want, ok := infoInt(info(master), "master_repl_offset")
	if !ok {
		tb.Fatalf("redis cluster master %s: no master_repl_offset", master.Addr())
	}
	replicas := 0
	for _, r := range c.Nodes {
		if r == master || !r.running() || !strings.Contains(info(r), "master_port:"+strconv.Itoa(master.port)+"\r\n") {
			continue
		}
		replicas++
		Eventually(tb, timeout, func() bool {
			got, ok := infoInt(info(r), "slave_repl_offset")
			return ok && got >= want
		}, "redis cluster replica %s: behind its master %s", r.Addr(), master.Addr())
	}
	if replicas == 0 {
		tb.Fatalf("redis cluster master %s: no replica", master.Addr())
	}
}

// infoInt returns the integer field name of an INFO reply.
func infoInt(info, name string) (int64, bool) {
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// oneShot runs f on a new client of r, closed after it, within a second.
func oneShot[T any](r *Redis, f func(context.Context, *redis.Client) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c := redis.NewClient(r.options())
	defer c.Close()
	return f(ctx, c)
}

// running reports whether the server was started and not stopped since.
func (r *Redis) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

// clusterPort returns a free loopback port at most 65535-clusterBusOffset
// whose bus port (port + clusterBusOffset) is free too.
func clusterPort(tb testing.TB) int {
	tb.Helper()
	for i := 0; i < 200; i++ {
		port := FreePort(tb)
		if port > 65535-clusterBusOffset {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+clusterBusOffset))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	tb.Fatalf("no free port pair (port, port+%d) for a cluster node", clusterBusOffset)
	return 0
}

// MoveSlot migrates slot, with its keys, from its master to the master
// to, as redis-cli --cluster reshard does: IMPORTING on to, MIGRATING on
// the source, MIGRATE of the keys in batches, then SETSLOT NODE on every
// master. Writes to the slot meanwhile are redirected (ASK, TRYAGAIN).
func (c *RedisCluster) MoveSlot(tb testing.TB, slot int, to *Redis) {
	tb.Helper()
	from := c.MasterOf(slot)
	if from == nil || from == to {
		tb.Fatalf("move slot %d to %s: its master is %v", slot, to.Addr(), from)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fc, tc := from.Client(tb), to.Client(tb)
	fromID, err := fc.ClusterMyID(ctx).Result()
	if err != nil {
		tb.Fatalf("cluster myid of %s: %v", from.Addr(), err)
	}
	toID, err := tc.ClusterMyID(ctx).Result()
	if err != nil {
		tb.Fatalf("cluster myid of %s: %v", to.Addr(), err)
	}
	s := strconv.Itoa(slot)
	if err := tc.Do(ctx, "cluster", "setslot", s, "importing", fromID).Err(); err != nil {
		tb.Fatalf("setslot importing on %s: %v", to.Addr(), err)
	}
	if err := fc.Do(ctx, "cluster", "setslot", s, "migrating", toID).Err(); err != nil {
		tb.Fatalf("setslot migrating on %s: %v", from.Addr(), err)
	}
	for {
		keys, err := fc.ClusterGetKeysInSlot(ctx, slot, 100).Result()
		if err != nil {
			tb.Fatalf("getkeysinslot %d on %s: %v", slot, from.Addr(), err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"migrate", "127.0.0.1", to.port, "", 0, 5000, "keys"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := fc.Do(ctx, args...).Err(); err != nil {
			tb.Fatalf("migrate %d keys of slot %d: %v", len(keys), slot, err)
		}
	}
	// The new owner first, as redis-cli does, then the old one and the
	// other masters.
	order := []*Redis{to, from}
	for _, r := range c.Nodes {
		if r != to && r != from {
			order = append(order, r)
		}
	}
	for _, r := range order {
		if !r.running() {
			continue
		}
		info, _ := oneShot(r, func(ctx context.Context, rc *redis.Client) (string, error) {
			return rc.Info(ctx, "replication").Result()
		})
		if !strings.Contains(info, "role:master") {
			continue
		}
		if err := r.Client(tb).Do(ctx, "cluster", "setslot", s, "node", toID).Err(); err != nil {
			tb.Fatalf("setslot node on %s: %v", r.Addr(), err)
		}
	}
}
