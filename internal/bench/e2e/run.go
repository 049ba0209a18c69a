package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/pkg/processors/builtin"
)

// ResultsFile is the name of the session's results in OutDir.
const ResultsFile = "results.json"

// RunSession runs every (repetition, fleet size, consumer) and writes
// OutDir/results.json after each run, so an interrupted session keeps
// what it measured.
func RunSession(ctx context.Context, cfg Config, log *zap.Logger) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	c, err := newClients(ctx)
	if err != nil {
		return nil, err
	}
	pl, err := loadPayloads(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	var plugins []string
	for _, p := range builtin.Plugins() {
		plugins = append(plugins, p.Name)
	}
	s := &Session{
		Started: time.Now().UTC().Format(time.RFC3339), Config: cfg,
		Host: Host{CPUs: runtime.NumCPU(), LoadStart: loadAvg(), GoVersion: runtime.Version()},
	}
	for rep := 1; rep <= cfg.Repeat; rep++ {
		for _, n := range cfg.Workers {
			for _, kind := range []Kind{Consumer, Baseline} {
				if err := s.add(ctx, cfg, log, runOne(ctx, cfg, c, pl, plugins, kind, n, rep, false, log)); err != nil {
					return s, err
				}
			}
		}
	}
	if cfg.Profile {
		// A run of its own: profiling costs the worker CPU, which must not
		// count in the measured runs.
		r := runOne(ctx, cfg, c, pl, plugins, Consumer, 1, 0, true, log)
		r.Profiled = true
		for _, f := range []string{"cpu-live.pprof", "heap.pprof"} {
			if _, err := os.Stat(filepath.Join(cfg.OutDir, f)); err == nil {
				s.Profiles = append(s.Profiles, f)
			}
		}
		if len(s.Profiles) == 0 {
			s.Notes = append(s.Notes, "no pprof profiles: the consumer did not serve /debug/pprof (config pprof: true wired to ops.Server.EnablePprof)")
		}
		if err := s.add(ctx, cfg, log, r); err != nil {
			return s, err
		}
	}
	return s, nil
}

// add records r and saves the session so far.
func (s *Session) add(ctx context.Context, cfg Config, log *zap.Logger, r Run) error {
	s.Runs = append(s.Runs, r)
	s.Host.LoadEnd = loadAvg()
	if err := writeJSON(filepath.Join(cfg.OutDir, ResultsFile), s); err != nil {
		return err
	}
	log.Info("run done", zap.String("kind", string(r.Kind)), zap.Int("workers", r.Workers), zap.Int("rep", r.Rep),
		zap.Bool("profiled", r.Profiled), zap.Float64("live_cpu_per_1000", r.Live.CPUPer1000),
		zap.Float64("max_records_per_sec", r.Max.RecordsPerSec), zap.Float64("live_p99_ms", r.Live.LatencyMs.P99),
		zap.Int64("peak_rss", r.PeakRSS), zap.Int64("peak_rss_max", r.PeakRSSMax), zap.Strings("errors", r.Errors))
	return ctx.Err()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// runOne is one run; failures are recorded in Run.Errors, never fatal, so
// one bad run does not lose the session.
func runOne(ctx context.Context, cfg Config, c *clients, pl *payloads, plugins []string, kind Kind, n, rep int, profile bool, log *zap.Logger) (run Run) {
	run = Run{Kind: kind, Workers: n, Rep: rep}
	fail := func(err error) Run {
		run.Errors = append(run.Errors, err.Error())
		return run
	}
	log = log.With(zap.String("kind", string(kind)), zap.Int("workers", n), zap.Int("rep", rep))
	res, err := createResources(ctx, c, "bench", cfg.Shards, log)
	if err != nil {
		return fail(err)
	}
	defer res.delete(context.WithoutCancel(ctx), log)
	run.Stream = res.stream
	dir := filepath.Join(cfg.OutDir, fmt.Sprintf("%s-%dw-rep%d", kind, n, rep))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}

	maxLeases := 0
	if n > 1 {
		maxLeases = (cfg.Shards + n - 1) / n
	}
	var workers []*worker
	ids := map[string]bool{}
	var audits []string
	defer func() {
		for _, w := range workers {
			if !w.exited() {
				_ = w.cmd.Process.Kill()
				<-w.done
			}
			w.logFile.Close() // a second Close after stop is harmless
		}
	}()
	tail := newTailer(2*cfg.Records + 1000)
	tailCtx, stopTail := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() { stopTail(); bg.Wait() }()
	start := time.Now()
	for i := range n {
		w, err := startWorker(cfg, kind, res, dir, i+1, maxLeases, plugins)
		if err != nil {
			return fail(err)
		}
		workers = append(workers, w)
		ids[w.id] = true
		audits = append(audits, w.audit)
	}
	bg.Add(1)
	go func() { defer bg.Done(); tail.follow(tailCtx, audits) }()

	leaseCtx, cancel := context.WithTimeoutCause(ctx, 3*time.Minute, errors.New("workers did not lease every shard within 3m"))
	err = waitFor(leaseCtx, 250*time.Millisecond, func() (bool, error) {
		for _, w := range workers {
			if w.exited() {
				return false, fmt.Errorf("%s: %w: %v (see %s)", w.id, errWorkerExited, w.err, w.logFile.Name())
			}
		}
		held, err := res.leasesHeld(leaseCtx, ids)
		return held == cfg.Shards, err
	})
	cancel()
	if err != nil {
		return fail(err)
	}
	run.LeaseSeconds = time.Since(start).Seconds()
	log.Info("all shards leased", zap.Float64("seconds", run.LeaseSeconds))

	prod := newProducer(c.kinesis, res.stream, 2*cfg.Records+1000)
	var alarms alarmWatch
	if kind == Consumer {
		bg.Add(1)
		go func() { defer bg.Done(); alarms.watch(tailCtx, c.sqs, res.queueURL) }()
	}

	// Live: a steady rate, with order bursts that must raise alarms.
	var profErr error
	var profWG sync.WaitGroup
	if profile {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			if err := sleep(ctx, 3*time.Second); err != nil {
				return
			}
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", workers[0].opsAddr, cfg.ProfileSeconds)
			profErr = fetch(ctx, url, filepath.Join(cfg.OutDir, "cpu-live.pprof"))
		}()
	}
	liveCtx, stopBursts := context.WithCancel(ctx)
	var burstKeys []uint64
	var burstTimes []time.Time
	var burstErr error
	var burstWG sync.WaitGroup
	burstWG.Add(1)
	go func() {
		defer burstWG.Done()
		t := time.NewTicker(cfg.BurstEvery)
		defer t.Stop()
		for {
			select {
			case <-liveCtx.Done():
				return
			case <-t.C:
			}
			ks, at, err := prod.burst(liveCtx, pl, cfg.BurstOrders)
			if err != nil {
				if liveCtx.Err() == nil {
					burstErr = err
				}
				return
			}
			burstKeys = append(burstKeys, ks...)
			burstTimes = append(burstTimes, at)
		}
	}()
	cpu0, _, err := fleetStat(workers)
	if err != nil {
		stopBursts()
		burstWG.Wait()
		return fail(err)
	}
	keys, first, last, err := prod.paced(ctx, pl, cfg.Records, cfg.Rate)
	stopBursts()
	burstWG.Wait()
	if err == nil {
		err = burstErr
	}
	if err != nil {
		return fail(fmt.Errorf("live phase: %w", err))
	}
	run.Live, err = finishPhase(ctx, cfg, tail, prod, workers, append(keys, burstKeys...), first, last, cpu0)
	if err != nil {
		run.Errors = append(run.Errors, "live phase: "+err.Error())
	}
	if kind == Consumer {
		// Give the last burst's alarm its chance before matching.
		_ = sleep(ctx, 2*time.Second)
		lat, missed, extra := alarms.match(burstTimes)
		run.Alarms = Alarms{Bursts: len(burstTimes), Missed: missed, Extra: extra, LatencyMs: Summarize(lat), SamplesMs: lat}
	}
	profWG.Wait()
	if profErr != nil {
		run.Errors = append(run.Errors, "cpu profile: "+profErr.Error())
	}

	// Max: as fast as the stream takes records.
	cpu0, run.PeakRSS, err = fleetStat(workers)
	if err != nil {
		return fail(err)
	}
	for _, w := range workers {
		if err := w.resetPeak(); err != nil {
			run.Errors = append(run.Errors, "reset peak RSS: "+err.Error())
		}
	}
	keys, first, err = prod.flood(ctx, pl, cfg.Records)
	if err != nil {
		return fail(fmt.Errorf("max phase: %w", err))
	}
	run.Max, err = finishPhase(ctx, cfg, tail, prod, workers, keys, first, time.Now(), cpu0)
	if err != nil {
		run.Errors = append(run.Errors, "max phase: "+err.Error())
	}
	if profile {
		url := fmt.Sprintf("http://%s/debug/pprof/heap", workers[0].opsAddr)
		if err := fetch(ctx, url, filepath.Join(cfg.OutDir, "heap.pprof")); err != nil {
			run.Errors = append(run.Errors, "heap profile: "+err.Error())
		}
	}
	if _, hwm, err := fleetStat(workers); err == nil {
		run.PeakRSSMax = hwm
	}
	for _, w := range workers {
		d, err := w.stop(35 * time.Second)
		run.ShutdownSeconds = append(run.ShutdownSeconds, d.Seconds())
		if err != nil {
			run.Errors = append(run.Errors, "stop: "+err.Error())
		}
	}
	run.Duplicates = tail.duplicates()
	return run
}

// finishPhase waits until every key is seen (or Settle passes after the
// last put) and measures the phase.
func finishPhase(ctx context.Context, cfg Config, tail *tailer, prod *producer, ws []*worker, keys []uint64, first, lastPut time.Time, cpu0 time.Duration) (Phase, error) {
	ph := Phase{Records: len(keys), PutSeconds: lastPut.Sub(first).Seconds()}
	var lastSeen int64
	wctx, cancel := context.WithTimeoutCause(ctx, cfg.Settle, fmt.Errorf("records still missing %s after the last put", cfg.Settle))
	err := waitFor(wctx, 50*time.Millisecond, func() (bool, error) {
		for _, w := range ws {
			if w.exited() {
				return false, fmt.Errorf("%s: %w: %v", w.id, errWorkerExited, w.err)
			}
		}
		var n int
		n, lastSeen = tail.count(keys)
		ph.Seen = n
		return n == len(keys), nil
	})
	cancel()
	cpu1, _, serr := fleetStat(ws)
	if serr == nil {
		ph.CPUSeconds = (cpu1 - cpu0).Seconds()
	}
	if lastSeen > 0 {
		ph.Seconds = time.Unix(0, lastSeen).Sub(first).Seconds()
	}
	if ph.Seconds > 0 {
		ph.RecordsPerSec = float64(ph.Seen) / ph.Seconds
	}
	if ph.Seen > 0 {
		ph.CPUPer1000 = ph.CPUSeconds / float64(ph.Seen) * 1000
	}
	ph.LatencyMs = Summarize(tail.latencies(prod, keys))
	return ph, errors.Join(err, serr)
}

// fetch GETs url into path (pprof endpoints).
func fetch(ctx context.Context, url, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
