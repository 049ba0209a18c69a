package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// Kind says which consumer a worker process runs.
type Kind string

// The two consumers under test.
const (
	Consumer Kind = "shardwatch"
	Baseline Kind = "baseline"
)

// worker is one worker process.
type worker struct {
	id      string
	cmd     *exec.Cmd
	audit   string
	opsAddr string // consumer only
	done    chan struct{}
	err     error
	logFile *os.File
}

// consumerConfig is the consumer's YAML: every built-in processor with its
// defaults, except orderflood, tuned so the bursts raise one alarm each.
func consumerConfig(cfg Config, r *resources, id, audit, opsAddr, metrics string, maxLeases int, plugins []string) ([]byte, error) {
	procs := map[string]any{}
	for _, p := range plugins {
		procs[p] = map[string]any{}
	}
	procs["orderflood"] = map[string]any{"threshold": cfg.AlarmThreshold, "window": "2s", "suppression": "5s", "time": "arrival", "grace": "500ms"}
	doc := map[string]any{
		"stream": r.stream, "app": r.app, "worker_id": id,
		"initial_position": "TRIM_HORIZON", "format": "auto",
		"poll_interval": cfg.Poll.String(), "max_leases": maxLeases, "max_records": cfg.MaxRecords,
		"ops_addr": opsAddr, "log_format": "json", "log_level": "info",
		"audit_log":  audit,
		"metrics":    map[string]any{"sink": "emf", "path": metrics},
		"alarms":     map[string]any{"topic_arn": r.topicARN},
		"processors": procs,
	}
	if cfg.Profile {
		doc["pprof"] = true
	}
	if cfg.FlushInterval > 0 {
		doc["flush_interval"] = cfg.FlushInterval.String()
	}
	return yaml.Marshal(doc)
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startWorker starts worker i of a fleet of kind in dir.
func startWorker(cfg Config, kind Kind, r *resources, dir string, i, maxLeases int, plugins []string) (*worker, error) {
	w := &worker{id: fmt.Sprintf("bench-%s-%d", kind, i), audit: filepath.Join(dir, fmt.Sprintf("audit-%d.log", i)), done: make(chan struct{})}
	var args []string
	bin := cfg.BaselineBin
	if kind == Consumer {
		bin = cfg.ConsumerBin
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		w.opsAddr = addr
		y, err := consumerConfig(cfg, r, w.id, w.audit, addr, filepath.Join(dir, fmt.Sprintf("metrics-%d.emf", i)), maxLeases, plugins)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, fmt.Sprintf("consumer-%d.yaml", i))
		if err := os.WriteFile(path, y, 0o644); err != nil {
			return nil, err
		}
		args = []string{"run", "--config", path}
	} else {
		args = []string{"--app", r.app, "--stream", r.stream, "--worker-id", w.id, "--audit-log", w.audit,
			"--initial-position", "TRIM_HORIZON", "--poll-interval", cfg.Poll.String(), "--max-leases", strconv.Itoa(maxLeases),
			"--max-records", strconv.Itoa(cfg.MaxRecords)}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker-%d.log", i)))
	if err != nil {
		return nil, err
	}
	w.logFile = f
	// Not CommandContext: the harness stops workers with SIGTERM and
	// measures them until they exit.
	w.cmd = exec.Command(bin, args...)
	w.cmd.Env = os.Environ() // the command applied StackDefaults
	w.cmd.Stdout, w.cmd.Stderr = f, f
	if err := w.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", w.id, err)
	}
	go func() {
		w.err = w.cmd.Wait()
		close(w.done)
	}()
	return w, nil
}

// start runs bin with args, its output in logPath.
func (w *worker) start(bin string, args []string, logPath string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	w.logFile = f
	w.cmd = exec.Command(bin, args...)
	w.cmd.Env = os.Environ()
	w.cmd.Stdout, w.cmd.Stderr = f, f
	if err := w.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", w.id, err)
	}
	go func() {
		w.err = w.cmd.Wait()
		close(w.done)
	}()
	return nil
}

func (w *worker) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace for a clean exit, then kills.
// It returns how long the graceful shutdown took.
func (w *worker) stop(grace time.Duration) (time.Duration, error) {
	defer w.logFile.Close()
	if w.exited() {
		return 0, fmt.Errorf("%s exited early: %v", w.id, w.err)
	}
	start := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-w.done:
		return time.Since(start), w.err
	case <-t.C:
		_ = w.cmd.Process.Kill()
		<-w.done
		return time.Since(start), fmt.Errorf("%s: no exit %s after SIGTERM; killed", w.id, grace)
	}
}

// clockTick is USER_HZ, the unit of /proc/PID/stat CPU times (100 on
// every Linux platform Go supports).
const clockTick = 100

// procStat is what the harness reads from /proc about a process.
type procStat struct {
	CPU       time.Duration // user + system
	RSS, HWM  int64         // bytes: current and peak resident set
	Available bool
}

func (w *worker) stat() procStat {
	if w.exited() {
		return procStat{}
	}
	return readProc(w.cmd.Process.Pid)
}

func readProc(pid int) procStat {
	var st procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return st
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stm, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return st
	}
	st.CPU = time.Duration(ut+stm) * time.Second / clockTick
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			st.RSS = kib(v)
		case "VmHWM":
			st.HWM = kib(v)
		}
	}
	st.Available = true
	return st
}

func kib(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n << 10
}

// resetPeak resets the process's VmHWM to its current RSS (Linux >= 4.0,
// writing "5" to /proc/PID/clear_refs), so the next phase's peak is its own.
func (w *worker) resetPeak() error {
	if w.exited() {
		return fmt.Errorf("%s exited", w.id)
	}
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", w.cmd.Process.Pid), []byte("5"), 0)
}

// fleetStat sums CPU and takes the largest peak RSS over workers.
func fleetStat(ws []*worker) (cpu time.Duration, maxHWM int64, err error) {
	for _, w := range ws {
		s := w.stat()
		if !s.Available {
			return 0, 0, fmt.Errorf("%s: no /proc stats (exited: %v)", w.id, w.err)
		}
		cpu += s.CPU
		maxHWM = max(maxHWM, s.HWM)
	}
	return cpu, maxHWM, nil
}

// waitFor polls cond every interval until it holds, fails, or ctx ends.
func waitFor(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

var errWorkerExited = errors.New("worker exited")
