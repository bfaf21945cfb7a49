package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/logviewer/logviewer/internal/promtext"
)

// daemon is one logviewer process started for an attack.
type daemon struct {
	cmd      *exec.Cmd
	args     []string
	env      []string // added to the environment
	syslog   string   // host:port, TCP and UDP
	httpBase string   // http://host:port
	pprof    string   // host:port
	logPath  string
	exited   chan struct{}
}

// freePort returns a loopback port that was free for TCP and UDP.
func freePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("free port: none found in 50 tries")
}

// daemonArgs are the flags every soak daemon gets for limits l.
func daemonArgs(l Limits) []string {
	return []string{
		"--history-bytes=" + strconv.FormatInt(l.HistoryBytes, 10),
		"--client-queue-bytes=" + strconv.FormatInt(l.ClientQueueBytes, 10),
		"--frame-bytes=" + strconv.FormatInt(l.FrameBytes, 10),
		"--max-connections=" + strconv.FormatInt(l.MaxConnections, 10),
		"--max-connections-per-addr=" + strconv.FormatInt(l.MaxConnsPerAddr, 10),
		"--idle-timeout=" + l.IdleTimeout.String(),
		"--max-channels=" + strconv.FormatInt(l.MaxChannels, 10),
		"--max-clients=" + strconv.FormatInt(l.MaxClients, 10),
		"--dns=false",
		"--log-level=warn",
	}
}

// startDaemon starts bin with the limits' flags on free loopback ports and
// waits until /healthz answers; its output goes to workDir/name.log.
func startDaemon(ctx context.Context, bin, workDir, name string, l Limits, env []string) (*daemon, error) {
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	d := &daemon{
		syslog:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		httpBase: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		pprof:    fmt.Sprintf("127.0.0.1:%d", ports[2]),
		logPath:  filepath.Join(workDir, name+".log"),
		exited:   make(chan struct{}),
	}
	d.args = append(daemonArgs(l), "--syslog-addr="+d.syslog, "--http-addr="+strings.TrimPrefix(d.httpBase, "http://"),
		"--pprof-addr="+d.pprof)
	out, err := os.Create(d.logPath)
	if err != nil {
		return nil, fmt.Errorf("daemon log: %w", err)
	}
	d.cmd = exec.Command(bin, d.args...)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.Env = append(os.Environ(), env...)
	d.env = env
	if err := d.cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = d.cmd.Wait()
		out.Close()
		close(d.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			return nil, fmt.Errorf("logviewer exited at start; see %s", d.logPath)
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := client.Get(d.httpBase + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stop()
	return nil, fmt.Errorf("logviewer not healthy after 15s; see %s", d.logPath)
}

// pid is the daemon's process ID.
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop ends the daemon: SIGCONT (in case it was stopped), SIGTERM, and
// SIGKILL after 10 s.
func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGCONT)
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// signal sends sig to the daemon.
func (d *daemon) signal(sig syscall.Signal) error {
	if err := d.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to logviewer: %w", sig, err)
	}
	return nil
}

// memKiB returns VmRSS and VmHWM of process pid in KiB.
func memKiB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read process status: %w", err)
	}
	return statusKiB(b, "VmRSS:"), statusKiB(b, "VmHWM:"), nil
}

// statusKiB returns the kB value of key in a /proc status file, or 0.
func statusKiB(status []byte, key string) int64 {
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte(key)); ok {
			f := bytes.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return n
			}
		}
	}
	return 0
}

// rssSampler reads the daemon's VmRSS every second.
type rssSampler struct {
	mu      sync.Mutex
	samples []int64 // KiB
	done    chan struct{}
}

// sampleRSS starts sampling pid until ctx ends.
func sampleRSS(ctx context.Context, pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if rss, _, err := memKiB(pid); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, rss)
				s.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// peakKiB is the largest sample; call after ctx ended.
func (s *rssSampler) peakKiB() (peak int64, n int) {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.samples {
		peak = max(peak, v)
	}
	return peak, len(s.samples)
}

// counters maps a Prometheus sample ("name{labels}") to its value.
type counters map[string]float64

// scrape reads the logviewer_* samples of the daemon's /metrics.
func (d *daemon) scrape(ctx context.Context) (counters, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.httpBase+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseCounters(resp.Body)
}

// parseCounters reads the logviewer_ samples of a /metrics page.
func parseCounters(r io.Reader) (counters, error) { return promtext.Parse(r, "logviewer_") }

// delta is after minus before for one sample name.
func delta(before, after counters, name string) float64 {
	return after[name] - before[name]
}

// saveHeap writes the daemon's heap profile (with runtime.MemStats, as
// text) to workDir/name-heap.txt, to tell live heap from what the Go
// runtime keeps.
func (d *daemon) saveHeap(ctx context.Context, workDir, name string) (memStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ms memStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.pprof+"/debug/pprof/heap?debug=1", nil)
	if err != nil {
		return ms, fmt.Errorf("heap profile: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ms, fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return ms, fmt.Errorf("heap profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(workDir, name+"-heap.txt"), body, 0o644); err != nil {
		return ms, fmt.Errorf("heap profile: %w", err)
	}
	return parseMemStats(body), nil
}

// memStats are the runtime.MemStats figures a heap profile ends with.
type memStats struct {
	HeapAlloc, HeapInuse, HeapIdle, HeapReleased, StackInuse, Sys, NextGC int64
}

// parseMemStats reads the "# Name = value" lines of a debug=1 heap profile.
func parseMemStats(b []byte) memStats {
	var m memStats
	fields := map[string]*int64{
		"HeapAlloc": &m.HeapAlloc, "HeapInuse": &m.HeapInuse, "HeapIdle": &m.HeapIdle,
		"HeapReleased": &m.HeapReleased, "Stack": &m.StackInuse, "Sys": &m.Sys, "NextGC": &m.NextGC,
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("# "))
		if !ok {
			continue
		}
		name, val, ok := bytes.Cut(rest, []byte(" = "))
		if !ok {
			continue
		}
		p := fields[string(name)]
		if p == nil {
			continue
		}
		f := bytes.Fields(val)
		if len(f) > 0 {
			*p, _ = strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return m
}

// saveCPUProfile writes a CPU profile of the daemon over dur to
// workDir/name-cpu.pb.gz.
func (d *daemon) saveCPUProfile(ctx context.Context, dur time.Duration, workDir, name string) error {
	ctx, cancel := context.WithTimeout(ctx, dur+10*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", d.pprof, int(dur.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(workDir, name+"-cpu.pb.gz"), body, 0o644); err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	return nil
}

// sumPrefix adds up the samples whose name starts with prefix.
func sumPrefix(c counters, prefix string) float64 {
	var n float64
	for name, v := range c {
		if strings.HasPrefix(name, prefix) {
			n += v
		}
	}
	return n
}
