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
)

// RedisCluster is a Redis Cluster of masters without replicas, started for
// one test on free loopback ports.
type RedisCluster struct {
	Nodes []*Redis
}

// clusterBusOffset is how far above its port a cluster node's bus listens.
const clusterBusOffset = 10000

// StartRedisCluster starts n redis-server nodes with cluster mode on,
// joins them with redis-cli --cluster create as n masters, waits until
// every node says the cluster is ok, and stops them when the test ends.
func StartRedisCluster(tb testing.TB, n int) *RedisCluster {
	tb.Helper()
	bin := RequireBinary(tb, "redis-server")
	cli := RequireBinary(tb, "redis-cli")
	rc := &RedisCluster{}
	var addrs []string
	for range n {
		dir := tb.TempDir()
		r := &Redis{
			bin:  bin,
			dir:  dir,
			port: clusterPort(tb),
			extra: []string{"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", "2000"},
		}
		r.Start(tb)
		tb.Cleanup(func() { r.stop() })
		rc.Nodes = append(rc.Nodes, r)
		addrs = append(addrs, r.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
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
