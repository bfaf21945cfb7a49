package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// probeEvery is how often readiness probes are sent until every
// subscriber has seen one.
const probeEvery = 50 * time.Millisecond

// rssSampleEvery is how often watched processes' RSS is sampled for the
// peak during a run.
const rssSampleEvery = 100 * time.Millisecond

// bench runs one measurement: subscribers and idle clients connect, probes
// confirm the subscriptions are live, the load runs, receivers drain, and
// the watched processes are read before and after. Progress goes to logw.
func bench(ctx context.Context, cfg Config, logw io.Writer) (*Report, error) {
	rep := &Report{Label: cfg.Label, Run: cfg.Run}
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, "logbench %s: %s\n", cfg.Run, fmt.Sprintf(format, args...))
	}

	transport := &http.Transport{
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
		ReadBufferSize:      16 << 10,
		WriteBufferSize:     4 << 10,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}

	resume := make(chan struct{})
	var resumeOnce sync.Once
	resumeSlow := func() { resumeOnce.Do(func() { close(resume) }) }
	defer resumeSlow()
	subs := makeSubscribers(cfg, resume)

	subCtx, cancelSubs := context.WithCancel(ctx)
	defer cancelSubs()
	for _, s := range subs {
		go s.run(subCtx, client)
	}
	defer func() {
		cancelSubs()
		for _, s := range subs {
			<-s.done
		}
	}()
	if err := waitConnected(ctx, subs, cfg.ReadyTimeout); err != nil {
		return nil, err
	}
	if len(subs) > 0 {
		logf("%d subscribers connected", len(subs))
	}

	if cfg.IdleClients > 0 {
		idle, conns := measureIdle(ctx, cfg, logf)
		rep.Idle = idle
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
	}

	var (
		res       *loadResult
		sent      []uint64
		start     time.Time
		activeEnd time.Time // the last line received (or sent): CPU % is over the active time
	)
	// logbench watches itself too: on a small machine it competes with the
	// daemon for the same cores, and the report should show how much.
	watch := newProcWatch(append(append([]int(nil), cfg.PIDs...), os.Getpid()))
	if cfg.Load.Addr != "" {
		conns, err := dialLoad(ctx, cfg.Load)
		if err != nil {
			return nil, err
		}
		if err := probe(ctx, cfg, subs); err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		watch.start(ctx)
		before := scrapeAll(ctx, client, cfg.MetricsURLs, rep)
		var slowTimer *time.Timer
		if cfg.SlowPause > 0 {
			slowTimer = time.AfterFunc(cfg.SlowPause, resumeSlow)
		}
		logf("load: %d lines to %s over %s", cfg.Load.total(), cfg.Load.Addr, cfg.Load.Proto)
		loadStart := time.Now()
		for _, s := range subs {
			s.loadStart.Store(loadStart.UnixNano())
		}
		res = runLoad(ctx, cfg.Load, conns, loadStart)
		if slowTimer != nil {
			slowTimer.Stop()
		}
		resumeSlow()
		sent, start = res.Sent, res.Start
		elapsed := res.End.Sub(res.Start).Seconds()
		rep.Load = &LoadReport{
			Addr: cfg.Load.Addr, Proto: cfg.Load.Proto, Kind: cfg.Load.Kind, Conns: cfg.Load.Conns,
			Size: cfg.Load.Size, Lines: res.total(), Seconds: elapsed, Rate: float64(res.total()) / elapsed,
		}
		rep.Errors = append(rep.Errors, res.Errors...)
		logf("load done: %d lines in %.3fs; draining", res.total(), elapsed)
		drain(ctx, subs, res.total(), cfg.IdleTimeout, cfg.DrainTimeout)
		activeEnd = res.End
		for _, s := range subs {
			if t := time.Unix(0, s.lastRecv.Load()); t.After(activeEnd) {
				activeEnd = t
			}
		}
		after := scrapeAll(ctx, client, cfg.MetricsURLs, rep)
		for i, u := range cfg.MetricsURLs {
			if before[i] != nil && after[i] != nil {
				rep.Counters = append(rep.Counters, counterDeltas(u, before[i], after[i])...)
			}
		}
	} else if len(subs) > 0 {
		watch.start(ctx)
		start = time.Now()
		resumeSlow()
		if cfg.Load.Duration > 0 {
			select {
			case <-time.After(cfg.Load.Duration):
			case <-ctx.Done():
			}
		} else {
			<-ctx.Done()
		}
	}
	if watch.started {
		if activeEnd.IsZero() {
			activeEnd = time.Now()
		}
		rep.Procs = watch.stop(activeEnd)
		for _, p := range rep.Procs {
			if p.Error != "" {
				rep.Errors = append(rep.Errors, p.Error)
			}
		}
	}

	cancelSubs()
	results := make([]subscriberResult, 0, len(subs))
	for _, s := range subs {
		<-s.done
		results = append(results, s.result(sent))
	}
	var expected uint64
	if res != nil {
		expected = res.total()
	}
	rep.Groups = groupResults(results, expected, start)
	return rep, nil
}

// makeSubscribers creates the -k subscribers per URL, the slow ones and
// the Redis ones.
func makeSubscribers(cfg Config, resume <-chan struct{}) []*subscriber {
	var subs []*subscriber
	for _, u := range cfg.SubURLs {
		for i := 0; i < cfg.Subscribers; i++ {
			subs = append(subs, newSubscriber(subKind(u), u, cfg.Run, false, nil))
		}
	}
	for i := 0; i < cfg.SlowClients; i++ {
		u := cfg.SubURLs[0]
		subs = append(subs, newSubscriber(subKind(u), u, cfg.Run, true, resume))
	}
	if cfg.RedisURL != "" {
		for i := 0; i < cfg.Subscribers; i++ {
			subs = append(subs, newSubscriber(subRedis, redisTarget(cfg.RedisURL, cfg.RedisPattern), cfg.Run, false, nil))
		}
	}
	return subs
}

// waitConnected waits until every subscriber's stream is open; one that
// fails to connect fails the run.
func waitConnected(ctx context.Context, subs []*subscriber, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, s := range subs {
		select {
		case <-s.connected:
		case <-s.done:
			return fmt.Errorf("subscriber %s %s: %w", s.kind, s.target, s.err)
		case <-deadline.C:
			return fmt.Errorf("subscriber %s %s not connected after %v", s.kind, s.target, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// probe sends probe lines until every subscriber has received one, so the
// measured load starts only when all subscriptions are live.
func probe(ctx context.Context, cfg Config, subs []*subscriber) error {
	if len(subs) == 0 {
		return nil
	}
	p, err := newProber(ctx, cfg.Load)
	if err != nil {
		return err
	}
	defer p.Close()
	deadline := time.Now().Add(cfg.ReadyTimeout)
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		waiting := 0
		for _, s := range subs {
			select {
			case <-s.done:
				return fmt.Errorf("subscriber %s %s ended before the load: %w", s.kind, s.target, s.err)
			default:
			}
			if !s.ready.Load() {
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d subscribers saw no probe line within %v: is the pipeline up and the channel right?",
				waiting, len(subs), cfg.ReadyTimeout)
		}
		if err := p.send(); err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// drain waits until every working subscriber has all lines, or no
// subscriber got a new line for idle, or at most limit.
func drain(ctx context.Context, subs []*subscriber, want uint64, idle, limit time.Duration) {
	begin := time.Now()
	lastChange := begin
	var lastSum uint64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var sum uint64
		complete := true
		for _, s := range subs {
			select {
			case <-s.done:
				continue // failed: it will get no more
			default:
			}
			g := s.got.Load()
			sum += g
			if g < want {
				complete = false
			}
		}
		now := time.Now()
		if complete || now.Sub(begin) > limit {
			return
		}
		if sum != lastSum {
			lastSum, lastChange = sum, now
		} else if now.Sub(lastChange) > idle {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// measureIdle opens the idle clients and reports the watched processes'
// RSS before and after they connected.
func measureIdle(ctx context.Context, cfg Config, logf func(string, ...any)) (*IdleReport, []net.Conn) {
	rep := &IdleReport{Clients: cfg.IdleClients}
	before := sampleAll(cfg.PIDs)
	conns, err := openIdleClients(ctx, cfg.IdleURL, cfg.IdleClients)
	rep.Opened = len(conns)
	if err != nil {
		rep.Error = err.Error()
	}
	logf("%d of %d idle clients connected", len(conns), cfg.IdleClients)
	after := waitRSSSettled(ctx, cfg.PIDs)
	for i, pid := range cfg.PIDs {
		r := IdleRSS{PID: pid, Name: after[i].Name, RSSBeforeMiB: mib(before[i].RSSKiB), RSSAfterMiB: mib(after[i].RSSKiB)}
		if len(conns) > 0 {
			r.KiBPerClient = (float64(after[i].RSSKiB) - float64(before[i].RSSKiB)) / float64(len(conns))
		}
		rep.Procs = append(rep.Procs, r)
	}
	return rep, conns
}

// sampleAll reads every pid; a process that cannot be read gives a zero
// sample.
func sampleAll(pids []int) []procSample {
	out := make([]procSample, len(pids))
	for i, pid := range pids {
		out[i], _ = readProc(pid)
	}
	return out
}

// waitRSSSettled samples the processes until their RSS has not grown for
// half a second (the server side of connections is set up lazily), at most
// for five seconds.
func waitRSSSettled(ctx context.Context, pids []int) []procSample {
	last := sampleAll(pids)
	stableSince := time.Now()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(pids) > 0 && time.Now().Before(deadline) && time.Since(stableSince) < 500*time.Millisecond {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return last
		}
		cur := sampleAll(pids)
		for i := range cur {
			if cur[i].RSSKiB > last[i].RSSKiB {
				stableSince = time.Now()
			}
		}
		last = cur
	}
	return last
}

// procWatch reads the watched processes at the start and end of a run and
// samples their RSS in between for the peak.
type procWatch struct {
	pids    []int
	started bool
	begin   time.Time
	first   []procSample
	peak    []uint64
	mu      sync.Mutex
	stopped chan struct{}
	done    chan struct{}
}

func newProcWatch(pids []int) *procWatch {
	return &procWatch{pids: pids, stopped: make(chan struct{}), done: make(chan struct{})}
}

// start takes the first reading and begins sampling.
func (w *procWatch) start(ctx context.Context) {
	w.started = true
	w.begin = time.Now()
	w.first = sampleAll(w.pids)
	w.peak = make([]uint64, len(w.pids))
	for i, s := range w.first {
		w.peak[i] = s.RSSKiB
	}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(rssSampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
			case <-w.stopped:
				return
			case <-ctx.Done():
				return
			}
			w.sample()
		}
	}()
}

func (w *procWatch) sample() []procSample {
	cur := sampleAll(w.pids)
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, s := range cur {
		w.peak[i] = max(w.peak[i], s.RSSKiB)
	}
	return cur
}

// stop takes the last reading and reports each process.
// CPU percent is over the time from start to activeEnd: what came after
// (waiting for lines that never arrive) costs no CPU and would dilute it.
func (w *procWatch) stop(activeEnd time.Time) []ProcReport {
	close(w.stopped)
	<-w.done
	last := w.sample()
	wall := activeEnd.Sub(w.begin).Seconds()
	out := make([]ProcReport, len(w.pids))
	for i, pid := range w.pids {
		p := ProcReport{PID: pid, Name: last[i].Name}
		if _, err := readProc(pid); err != nil {
			p.Error = err.Error()
		}
		cpu := float64(last[i].CPUTicks-min(w.first[i].CPUTicks, last[i].CPUTicks)) / clockTicks
		p.CPUSeconds = cpu
		if wall > 0 {
			p.CPUPercent = 100 * cpu / wall
		}
		p.RSSPeakMiB, p.RSSEndMiB, p.HWMMiB = mib(w.peak[i]), mib(last[i].RSSKiB), mib(last[i].HWMKiB)
		out[i] = p
	}
	return out
}

// scrapeAll reads the counters of every metrics URL; a failed scrape is
// noted in the report and leaves a nil entry.
func scrapeAll(ctx context.Context, client *http.Client, urls []string, rep *Report) []counters {
	out := make([]counters, len(urls))
	for i, u := range urls {
		c, err := scrapeCounters(ctx, client, u)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			continue
		}
		out[i] = c
	}
	return out
}
