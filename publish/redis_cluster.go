package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster layout upkeep of a stream node.
const (
	layoutPoll    = 3 * time.Second        // the layout is read this often while all is well
	layoutRetry   = 250 * time.Millisecond // and this often while a reader is down or it cannot be read
	layoutTimeout = time.Second            // one CLUSTER SLOTS at most
)

// newClusterClient connects to a Redis Cluster through its seed nodes,
// with the credentials and TLS of the first URL.
func newClusterClient(opts []*redis.Options) *redis.ClusterClient {
	first := opts[0]
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:     urlsAddrs(opts),
		Username:  first.Username,
		Password:  first.Password,
		TLSConfig: first.TLSConfig,
		// The bus retries itself, knowing which commands are safe to
		// repeat; MOVED and ASK are still followed.
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
		// A failover moves slots without a MOVED to the clients of the
		// failed master (its connections are refused): the bus asks for a
		// reload after a failure (reloadClusterState), and this bounds
		// how stale the slot map gets otherwise.
		ClusterStateReloadInterval: 5 * time.Second,
	})
}

// reloadClusterState makes a cluster client read the slot map again (in
// the background): after a failed command, whose slot may have moved to a
// replica promoted in a failover. Other clients are left alone.
func reloadClusterState(ctx context.Context, c redis.UniversalClient) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
}

// slotMoving returns, for a transaction Redis aborted (EXECABORT) because
// a command was refused as its slot is moving (ASK, MOVED, or TRYAGAIN
// while a resharding migrates the slot's keys), an error wrapping that
// reply, which isPermanent deems transient: the flush is tried again
// rather than dropped. Any other err is returned as it is.
func slotMoving(cmds []redis.Cmder, err error) error {
	if !redis.HasErrorPrefix(err, "EXECABORT") {
		return err
	}
	for _, c := range cmds {
		cerr := c.Err()
		for _, p := range []string{"ASK", "MOVED", "TRYAGAIN"} {
			if cerr != nil && redis.HasErrorPrefix(cerr, p) {
				return fmt.Errorf("transaction aborted while the slot moves: %w", cerr)
			}
		}
	}
	return err
}

// startClusterReaders starts the readers of a Redis Cluster: one per
// master, subscribed (SSUBSCRIBE) to the batch shard channels of the slots
// it serves, so that a stream node gets every channel's records, each from
// the master that holds the channel, whatever channels come and go. A
// watcher follows the cluster's layout (see clusterWatcher): after a
// failover or a resharding the readers of the masters whose slots changed
// are replaced, and the new ones go on from where the old ones were. Until
// the masters are first found the shard reports itself degraded.
func (sh *redisShard) startClusterReaders(ctx context.Context, seed *redis.Options, seeds []string) {
	sh.found = make(chan struct{})
	sh.readerDone = make(chan struct{})
	w := &clusterWatcher{
		sh:     sh,
		seed:   seed,
		addrs:  slices.Clone(seeds),
		hint:   make(chan struct{}, 1),
		probes: make(map[string]*redis.Client),
		cur:    make(map[string]*clusterReader),
	}
	go w.run(ctx)
}

// clusterWatcher keeps one reader per master of a Redis Cluster, following
// the cluster's layout. It reads the layout (CLUSTER SLOTS) at start, when
// a reader loses its connection or is told its slot moved (a MOVED reply,
// or the sunsubscribe Redis sends to a shard channel's subscribers when its
// slot leaves the node), every layoutPoll, and every layoutRetry while a
// reader is down (a master failing over). When a master's slots change (a
// replica promoted, slots resharded) its reader is stopped, and once every
// such reader has stopped each master with a new slot set gets a new one,
// handed the positions the old ones delivered for its slots (see
// handOver): it fills the gap from the streams as a reader does after a
// reconnect, so no record is lost or delivered twice across the switch.
// Only the run goroutine uses its fields.
type clusterWatcher struct {
	sh     *redisShard
	seed   *redis.Options            // credentials and TLS of every node
	addrs  []string                  // nodes to ask for the layout, the last that answered first
	hint   chan struct{}             // 1 slot: a reader saw a sign of a layout change
	probes map[string]*redis.Client  // per node asked: its client
	cur    map[string]*clusterReader // per master address: its reader
	bad    error                     // why the last layout read failed, for the log
	begun  bool                      // the first layout was applied
}

// clusterReader is the reader of one master, with its slots.
type clusterReader struct {
	rd     *redisReader
	slots  []bool // by slot: served by the master
	cancel context.CancelFunc
	done   chan struct{} // closed when rd's run returned
}

// clusterLayout is what CLUSTER SLOTS says of the cluster.
type clusterLayout struct {
	masters map[string][]bool // per master address: the slots it serves
	nodes   []string          // the address of every node, masters and replicas
}

// run follows the layout until ctx ends, then stops the readers.
func (w *clusterWatcher) run(ctx context.Context) {
	defer func() {
		w.stop(slices.Collect(maps.Values(w.cur)))
		for _, c := range w.probes {
			c.Close()
		}
		close(w.sh.readerDone)
	}()
	var backoff time.Duration
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-w.hint:
		}
		wait := layoutPoll
		lay, err := w.read(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			w.sh.setLayoutHealth(err)
			if w.bad == nil {
				w.sh.log.Warn("redis cluster layout unreadable; retrying", slog.String("error", err.Error()))
			}
			w.bad = err
			backoff = min(nextBackoff(backoff), layoutPoll)
			wait = max(backoff, layoutRetry)
		default:
			w.sh.setLayoutHealth(nil)
			if w.bad != nil {
				w.sh.log.Info("redis cluster layout readable again")
			}
			w.bad, backoff = nil, 0
			w.apply(ctx, lay)
			if w.degraded() {
				wait = layoutRetry
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// degraded reports whether a reader is not subscribed: its master may be
// failing over, so the layout is worth reading again soon.
func (w *clusterWatcher) degraded() bool {
	for _, cr := range w.cur {
		if cr.rd.health() != nil {
			return true
		}
	}
	return false
}

// read asks the known nodes in turn for the layout until one answers with
// every slot served.
func (w *clusterWatcher) read(ctx context.Context) (clusterLayout, error) {
	var errs []error
	for i, addr := range w.addrs {
		c := w.probes[addr]
		if c == nil {
			c = redis.NewClient(&redis.Options{
				Addr:                  addr,
				Username:              w.seed.Username,
				Password:              w.seed.Password,
				TLSConfig:             w.seed.TLSConfig,
				MaxRetries:            -1,
				DialerRetries:         1,
				DialTimeout:           layoutTimeout,
				PoolSize:              1,
				ContextTimeoutEnabled: true,
			})
			w.probes[addr] = c
		}
		cctx, cancel := context.WithTimeout(ctx, layoutTimeout)
		slots, err := c.ClusterSlots(cctx).Result()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster slots from %s: %w", addr, err))
			continue
		}
		lay, err := parseClusterSlots(slots)
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster slots from %s: %w", addr, err))
			continue
		}
		// Ask this node first next time, then the others known.
		known := append([]string{addr}, w.addrs[:i]...)
		known = append(known, w.addrs[i+1:]...)
		for _, n := range lay.nodes {
			if !slices.Contains(known, n) {
				known = append(known, n)
			}
		}
		w.addrs = known
		return lay, nil
	}
	if len(errs) == 0 {
		return clusterLayout{}, errors.New("no cluster node known")
	}
	return clusterLayout{}, errors.Join(errs...)
}

// parseClusterSlots returns the layout of a CLUSTER SLOTS reply.
func parseClusterSlots(slots []redis.ClusterSlot) (clusterLayout, error) {
	lay := clusterLayout{masters: make(map[string][]bool)}
	covered := 0
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		addr := s.Nodes[0].Addr
		if lay.masters[addr] == nil {
			lay.masters[addr] = make([]bool, clusterSlots)
		}
		for slot := max(s.Start, 0); slot <= s.End && slot < clusterSlots; slot++ {
			if !lay.masters[addr][slot] {
				lay.masters[addr][slot] = true
				covered++
			}
		}
		for _, n := range s.Nodes {
			if n.Addr != "" && !slices.Contains(lay.nodes, n.Addr) {
				lay.nodes = append(lay.nodes, n.Addr)
			}
		}
	}
	if covered < clusterSlots {
		return clusterLayout{}, errors.New("not every slot is served")
	}
	return lay, nil
}

// apply makes the readers match lay: the readers of masters gone or whose
// slots changed are stopped, then the masters without a reader get one,
// handed what the stopped ones delivered. The first layout starts every
// reader.
func (w *clusterWatcher) apply(ctx context.Context, lay clusterLayout) {
	var gone []*clusterReader
	for addr, cr := range w.cur {
		if slots, ok := lay.masters[addr]; !ok || !slices.Equal(slots, cr.slots) {
			gone = append(gone, cr)
			delete(w.cur, addr)
		}
	}
	first := !w.begun
	w.begun = true
	if !first && len(gone) == 0 && len(lay.masters) == len(w.cur) {
		return // unchanged
	}
	if !first {
		// The new readers fill their gaps through the shard's cluster
		// client: it must know the new masters too.
		reloadClusterState(ctx, w.sh.client)
	}
	w.stop(gone)
	var started []string
	for addr, slots := range lay.masters {
		if w.cur[addr] != nil {
			continue
		}
		rd := w.sh.newClusterReader(addr, slots, w.seed)
		rd.lost = func() {
			reloadClusterState(ctx, w.sh.client)
			w.nudge()
		}
		handOver(rd, slots, gone)
		rctx, cancel := context.WithCancel(ctx)
		cr := &clusterReader{rd: rd, slots: slots, cancel: cancel, done: make(chan struct{})}
		w.cur[addr] = cr
		started = append(started, addr)
		go rd.run(rctx, cr.done)
	}
	readers := make([]*redisReader, 0, len(w.cur))
	for _, cr := range w.cur {
		readers = append(readers, cr.rd)
	}
	w.sh.healthMu.Lock()
	w.sh.readers = readers
	w.sh.healthMu.Unlock()
	if first {
		close(w.sh.found)
		return
	}
	slices.Sort(started)
	w.sh.log.Info("redis cluster layout changed; readers replaced",
		slog.Int("masters", len(lay.masters)), slog.Any("new_readers", started))
}

// nudge asks run to read the layout now; readers call it.
func (w *clusterWatcher) nudge() {
	select {
	case w.hint <- struct{}{}:
	default:
	}
}

// stop stops the readers crs and waits until they have returned, so that
// what they delivered is final.
func (w *clusterWatcher) stop(crs []*clusterReader) {
	for _, cr := range crs {
		cr.cancel()
		cr.rd.close()
	}
	for _, cr := range crs {
		<-cr.done
	}
}

// handOver gives the new reader rd of slots the positions the stopped
// readers gone delivered on those slots, as if rd had delivered them and
// lost its connection: its first session fills the gap from the streams.
// Per channel it goes on after the last record delivered; a channel of
// which no record was delivered starts where the stopped reader of its
// bucket stood in the bucket (see bucketBase: its last record delivered,
// or where it started), so none of its records after that is missed. A
// bucket no stopped reader had starts at the oldest of their floors.
// Without stopped readers (the first layout) rd starts afresh.
func handOver(rd *redisReader, slots []bool, gone []*clusterReader) {
	keys := rd.sh.keys
	for _, old := range gone {
		o := old.rd
		shared := false
		for slot, mine := range slots {
			if mine && old.slots[slot] {
				shared = true
				break
			}
		}
		if !shared {
			continue
		}
		for ch, id := range o.lastID {
			if !slots[keySlot(keys.stream(ch))] {
				continue
			}
			if last, ok := rd.lastID[ch]; !ok || last.less(id) {
				rd.lastID[ch] = id
			}
		}
		for k := range clusterBuckets {
			// Where the old reader stood in the bucket: the new one goes
			// on from there for the bucket's channels it has no record of.
			if slot := bucketSlot(k); slots[slot] && old.slots[slot] && rd.lastBucket[k].less(o.bucketBase(k)) {
				rd.lastBucket[k] = o.bucketBase(k)
			}
		}
		f := o.lastAny
		if f.less(o.startID) {
			f = o.startID
		}
		if !f.isZero() && (rd.startID.isZero() || f.less(rd.startID)) {
			rd.startID = f
		}
		rd.sawPlain = rd.sawPlain || o.sawPlain
	}
	rd.publishFloor()
}

// setLayoutHealth records whether the cluster's layout could be read.
func (sh *redisShard) setLayoutHealth(err error) {
	sh.healthMu.Lock()
	defer sh.healthMu.Unlock()
	if err != nil {
		err = fmt.Errorf("read cluster layout: %w", err)
	}
	sh.layoutErr = err
}

// newClusterReader returns the reader of one master serving slots. It
// subscribes to the shard channels of the buckets' slots it serves, the
// only ones notifications go to (a master serving none of them takes its
// first slot's, which stays silent, so that the reader still has a
// subscription to stand on).
func (sh *redisShard) newClusterReader(addr string, slots []bool, seed *redis.Options) *redisReader {
	keys := sh.keys
	var channels []string
	for k := range clusterBuckets {
		if slot := bucketSlot(k); slots[slot] {
			channels = append(channels, keys.notifySlot(slot))
		}
	}
	if len(channels) == 0 {
		if first := slices.Index(slots, true); first >= 0 {
			channels = append(channels, keys.notifySlot(first))
		}
	}
	client := redis.NewClient(&redis.Options{
		Addr:                  addr,
		Username:              seed.Username,
		Password:              seed.Password,
		TLSConfig:             seed.TLSConfig,
		MaxRetries:            -1,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
	rd := newRedisReader(sh)
	rd.client = client
	rd.pattern = ""
	rd.channels = channels
	rd.owns = func(ch string) bool { return slots[keySlot(keys.stream(ch))] }
	rd.slots = slots
	rd.ownClient = true
	return rd
}
