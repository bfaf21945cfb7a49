package main

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"time"
)

// attackResult is one row of the report.
type attackResult struct {
	Key, Title  string
	Args        []string
	Env         []string
	FixedKiB    int64 // idle daemon's RSS after start
	BoundKiB    int64
	PeakKiB     int64 // the larger of the sampled VmRSS peak and VmHWM
	SampledKiB  int64
	HWMKiB      int64
	Samples     int
	Good        goodResult
	Figure      string
	Err         string
	DaemonLog   string
	Duration    time.Duration
	FixedWaited time.Duration
	Mem         memStats // the Go runtime's view at the end of the attack
	CPU         cpuUse   // during the attack
}

// settle is how long an idle daemon runs before its RSS is the fixed part.
const settle = 2 * time.Second

// runAttack starts a fresh daemon, measures its fixed part, runs the good
// traffic and the attack together for cfg.Duration, and measures.
func runAttack(ctx context.Context, cfg Config, a attack, log *slog.Logger) attackResult {
	res := attackResult{Key: a.key, Title: a.title, Duration: cfg.Duration, FixedWaited: settle}
	d, err := startDaemon(ctx, cfg.Logviewer, cfg.WorkDir, a.key, cfg.Limits, cfg.DaemonEnv)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer d.stop()
	res.Args, res.Env, res.DaemonLog = d.args, d.env, d.logPath
	time.Sleep(settle)
	fixed, _, err := memKiB(d.pid())
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.FixedKiB = fixed
	res.BoundKiB = bound(cfg.Limits, fixed<<10) >> 10
	before, err := d.scrape(ctx)
	if err != nil {
		res.Err = err.Error()
		return res
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	sampler := sampleRSS(runCtx, d.pid())
	var client goodClient
	connected := make(chan struct{})
	go client.run(runCtx, d.httpBase, connected)
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		res.Err = "good client did not connect in 10s"
		return res
	}
	sender := &goodSender{rate: cfg.GoodRate}
	senderDone := make(chan struct{})
	sendCtx, stopSend := context.WithCancel(runCtx)
	go func() { defer close(senderDone); sender.run(sendCtx, d.syslog) }()

	log.Info("attack", slog.String("name", a.key), slog.Duration("for", cfg.Duration))
	cpu0, cpuErr := takeCPU(d.pid())
	attackStart := time.Now()
	client.setStart(attackStart)
	if cfg.CPUProf > 0 {
		go func() {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(cfg.CPUProfAt):
			}
			// The profile must end before the attack does.
			prof := min(cfg.CPUProf, cfg.Duration-cfg.CPUProfAt-time.Second)
			if err := d.saveCPUProfile(runCtx, prof, cfg.WorkDir, a.key); err != nil {
				log.Warn("cpu profile", slog.Any("error", err))
			}
		}()
	}
	attackCtx, stopAttack := context.WithTimeout(runCtx, cfg.Duration)
	figure, attackErr := a.run(attackCtx, attackEnv{d: d, dur: cfg.Duration, log: log})
	stopAttack()
	if cpu1, err := takeCPU(d.pid()); err == nil && cpuErr == nil {
		res.CPU = cpu1.since(cpu0, time.Since(attackStart).Seconds())
	}
	stopSend()
	<-senderDone
	sent := sender.sent.Load()
	client.waitFor(sent)

	if ms, err := d.saveHeap(ctx, cfg.WorkDir, a.key); err != nil {
		log.Warn("heap profile", slog.Any("error", err))
	} else {
		res.Mem = ms
	}
	after, err := d.scrape(ctx)
	if err != nil {
		after = before
		attackErr = fmt.Errorf("%w (and %w)", err, attackErr)
	}
	_, hwm, _ := memKiB(d.pid())
	stopRun()
	res.SampledKiB, res.Samples = sampler.peakKiB()
	res.HWMKiB = hwm
	res.PeakKiB = max(res.SampledKiB, hwm)
	res.Good = client.result(sent, sender.err)
	if figure != nil {
		res.Figure = figure(before, after)
	}
	if attackErr != nil {
		res.Err = attackErr.Error()
	}
	return res
}

// raiseFileLimit lifts the tool's soft limit on open files to the hard one:
// the attacks hold thousands of sockets.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise file limit: %w", err)
		}
	}
	return lim.Cur, nil
}
