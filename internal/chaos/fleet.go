package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one consumer worker process.
type Proc struct {
	ID      string
	Audit   string
	LogPath string
	OpsAddr string
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	err     error
	stopped bool // SIGSTOPped and not yet continued
}

// Alive reports whether the process has not exited.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("chaos: signal %s to %s: %w", sig, p.ID, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	return nil
}

// Wait waits for the process to exit, up to d.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Fleet starts and tracks worker processes sharing one config.
type Fleet struct {
	Bin    string
	Config string
	Dir    string
	Env    []string

	mu    sync.Mutex
	procs []*Proc
	gen   map[string]int
}

// Start launches worker slot (e.g. "w1"); each launch of a slot gets a new
// worker ID and audit file, like a replacement ECS task.
func (f *Fleet) Start(slot string) (*Proc, error) {
	f.mu.Lock()
	if f.gen == nil {
		f.gen = map[string]int{}
	}
	f.gen[slot]++
	id := slot + "-" + strconv.Itoa(f.gen[slot])
	f.mu.Unlock()
	ops, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	p := &Proc{
		ID:      id,
		Audit:   filepath.Join(f.Dir, "audit-"+id+".log"),
		LogPath: filepath.Join(f.Dir, "worker-"+id+".log"),
		OpsAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ops[0])),
		done:    make(chan struct{}),
	}
	p.logFile, err = os.Create(p.LogPath)
	if err != nil {
		return nil, fmt.Errorf("chaos: worker log: %w", err)
	}
	p.cmd = exec.Command(f.Bin, "run", "--config", f.Config, "--worker-id", id, "--audit-log", p.Audit, "--ops-addr", p.OpsAddr)
	p.cmd.Env = f.Env
	p.cmd.Stdout, p.cmd.Stderr = p.logFile, p.logFile
	if err := p.cmd.Start(); err != nil {
		p.logFile.Close()
		return nil, fmt.Errorf("chaos: start worker %s: %w", id, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		p.logFile.Close()
		close(p.done)
	}()
	f.mu.Lock()
	f.procs = append(f.procs, p)
	f.mu.Unlock()
	return p, nil
}

// Procs returns every process started so far.
func (f *Fleet) Procs() []*Proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Proc(nil), f.procs...)
}

// Live returns the running processes that are not stopped.
func (f *Fleet) Live() []*Proc {
	var out []*Proc
	for _, p := range f.Procs() {
		if p.Alive() && !p.stopped {
			out = append(out, p)
		}
	}
	return out
}

// StopAll terminates every process gracefully (SIGCONT first), killing
// what does not exit within d.
func (f *Fleet) StopAll(d time.Duration) {
	for _, p := range f.Procs() {
		if p.Alive() {
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range f.Procs() {
		if !p.Wait(d) {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// Pos is a record position.
type Pos struct {
	Shard, Seq string
	Sub        int64
}

// auditTail reads audit files incrementally and remembers, per shard, when
// the harness last saw progress and from which process.
type auditTail struct {
	mu      sync.Mutex
	offsets map[string]int64
	counts  map[Pos]int
	// seen: shard -> process ID -> last time a new line was observed.
	seen map[string]map[string]time.Time
}

func newAuditTail() *auditTail {
	return &auditTail{offsets: map[string]int64{}, counts: map[Pos]int{}, seen: map[string]map[string]time.Time{}}
}

// poll reads what the processes appended since the last poll.
func (a *auditTail) poll(procs []*Proc) error {
	now := time.Now()
	for _, p := range procs {
		if err := a.read(p.ID, p.Audit, now); err != nil {
			return err
		}
	}
	return nil
}

func (a *auditTail) read(id, path string, now time.Time) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("chaos: audit: %w", err)
	}
	defer f.Close()
	a.mu.Lock()
	off := a.offsets[path]
	a.mu.Unlock()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("chaos: audit: %w", err)
	}
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// A partial last line (mid-write, or cut by SIGKILL) is read
			// again next time.
			break
		}
		off += int64(len(line))
		fs := strings.Fields(line)
		if len(fs) < 4 { // shard seq subseq worker [unix-millis]
			continue
		}
		sub, _ := strconv.ParseInt(fs[2], 10, 64)
		a.mu.Lock()
		a.counts[Pos{fs[0], fs[1], sub}]++
		if a.seen[fs[0]] == nil {
			a.seen[fs[0]] = map[string]time.Time{}
		}
		a.seen[fs[0]][id] = now
		a.mu.Unlock()
	}
	a.mu.Lock()
	a.offsets[path] = off
	a.mu.Unlock()
	return nil
}

// progressedSince reports whether shard made progress, seen after t, by a
// process other than exclude.
func (a *auditTail) progressedSince(shard string, t time.Time, exclude string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, at := range a.seen[shard] {
		if id != exclude && at.After(t) {
			return true
		}
	}
	return false
}

func (a *auditTail) snapshot() map[Pos]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[Pos]int, len(a.counts))
	for k, v := range a.counts {
		out[k] = v
	}
	return out
}

// tailLoop polls until ctx ends.
func (a *auditTail) tailLoop(ctx context.Context, f *Fleet, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_ = a.poll(f.Procs())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
