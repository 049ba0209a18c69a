package fleettest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Targets of issue 13, measured from the lease table (polled every 100 ms
// with an independent client) at the default shard_sync_interval and
// failover_time 6 s (env.config).
const (
	targetAlone = 3 * time.Second          // one worker starting alone owns every shard
	targetJoin  = 5 * time.Second          // a late joiner holds its fair share
	targetTerm  = 3 * time.Second          // SIGTERM: the survivor owns every shard
	targetCrash = failover + 2*time.Second // SIGKILL, SIGSTOP: the survivor owns every shard
	targetGap   = 5 * time.Second          // rolling replacement: longest gap in a shard's processing
	// ciSlack is what a loaded 2-core CI machine may add to a target before
	// the test fails: the targets are the product's (docs/reliability.md
	// reports the measured times; a miss within the slack is logged), the
	// test guards against a return to pass-per-lease takeover (19 s).
	ciSlack      = 4 * time.Second
	matrixEnvVar = "SHARDWATCH_FLEET_MATRIX"
)

func TestTakeover8Shards(t *testing.T) {
	t.Parallel()
	takeover(t, 8)
}

func TestTakeover16Shards(t *testing.T) {
	t.Parallel()
	takeover(t, 16)
}

func TestRollingReplacement8Shards(t *testing.T) {
	t.Parallel()
	rolling(t, 8)
}

func TestRollingReplacement16Shards(t *testing.T) {
	t.Parallel()
	rolling(t, 16)
}

// takeover runs the fault chain of issue 13 on one n-shard stream with a
// steady producer: a worker starts alone; a second joins and gets its fair
// share; it is stopped with SIGTERM; a third joins and is SIGKILLed; a
// fourth joins and is SIGSTOPped. After every fault the first worker must
// own every shard within the target. The graceful steps (start, join,
// SIGTERM) must not process any record twice; at the end every record is
// processed.
func takeover(t *testing.T, n int) {
	e := newEnv(t, int32(n))
	cfg := e.config("")
	prod := e.produce(t, 20*n)
	fairJoin := func(w1, w2 *worker, what string) time.Duration {
		t.Helper()
		took := waitFor(t, 4*targetJoin, what, func() bool {
			ls := e.leases()
			return len(owned(ls, w1.id)) == n/2 && len(owned(ls, w2.id)) == n/2
		})
		t.Logf("%d shards: %s %.1f s after it started", n, what, took.Seconds())
		if took > targetJoin {
			t.Logf("%d shards: %s took %s: over the %s target", n, what, took, targetJoin)
		}
		if took > targetJoin+ciSlack {
			t.Errorf("%d shards: %s took %s; want <= %s (+%s slack)", n, what, took, targetJoin, ciSlack)
		}
		return took
	}
	allTo := func(w *worker, what string, limit time.Duration) {
		t.Helper()
		took := waitFor(t, limit+20*time.Second, what, func() bool { return len(owned(e.leases(), w.id)) == n })
		t.Logf("%d shards: %s %.1f s", n, what, took.Seconds())
		if took > limit {
			t.Logf("%d shards: %s took %s: over the %s target", n, what, took, limit)
		}
		if took > limit+ciSlack {
			t.Errorf("%d shards: %s took %s; want <= %s (+%s slack)", n, what, took, limit, ciSlack)
		}
	}

	w1 := e.start(cfg, "w1")
	allTo(w1, "a worker starting alone owned every shard", targetAlone)

	w2 := e.start(cfg, "w2")
	fairJoin(w1, w2, "the late joiner w2 reached its fair share")
	if err := w2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	allTo(w1, "after SIGTERM of w2 the survivor owned every shard", targetTerm)
	// Graceful steps so far: every record once.
	want := prod.snapshot()
	got := e.waitProcessed(want, 60*time.Second, w1, w2)
	if _, dups := coverage(want, got); dups != 0 {
		t.Errorf("%d shards: %d duplicates across start, join and SIGTERM; want 0", n, dups)
	}
	select {
	case <-w2.done:
		if w2.err != nil {
			t.Errorf("w2 exited with %v after SIGTERM; want a clean exit", w2.err)
		}
	case <-time.After(30 * time.Second):
		t.Error("w2 did not exit within 30 s of SIGTERM")
	}

	w3 := e.start(cfg, "w3")
	fairJoin(w1, w3, "the late joiner w3 reached its fair share")
	if err := w3.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	allTo(w1, "after SIGKILL of w3 the survivor owned every shard", targetCrash)

	w4 := e.start(cfg, "w4")
	fairJoin(w1, w4, "the late joiner w4 reached its fair share")
	if err := w4.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	allTo(w1, "after SIGSTOP of w4 the survivor owned every shard", targetCrash)
	if err := w4.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	want = prod.stop(t)
	got = e.waitProcessed(want, 90*time.Second, w1, w2, w3, w4)
	missing, dups := coverage(want, got)
	t.Logf("%d shards: %d records, missing %d, duplicates %d (replays after SIGKILL/SIGSTOP, after the last checkpoint)", n, len(want), missing, dups)
}

// rolling is an ECS rolling replacement: 2 workers share n shards under a
// steady producer; 2 new workers start, and once they are ready both old
// ones get SIGTERM. No shard may go more than targetGap without
// processing, no record is processed twice and none is lost.
func rolling(t *testing.T, n int) {
	e := newEnv(t, int32(n))
	cfg := e.config("")
	prod := e.produce(t, 20*n)
	w1, w2 := e.start(cfg, "w1"), e.start(cfg, "w2")
	waitFor(t, 30*time.Second, "old workers balanced", func() bool {
		ls := e.leases()
		return len(owned(ls, "w1")) == n/2 && len(owned(ls, "w2")) == n/2
	})
	time.Sleep(time.Second) // steady processing before the deploy (not synchronisation)
	began := time.Now()
	w3, w4 := e.start(cfg, "w3"), e.start(cfg, "w4")
	for _, w := range []*worker{w3, w4} {
		waitFor(t, 30*time.Second, w.id+" ready", func() bool { return readyz(w) == 200 })
	}
	for _, w := range []*worker{w1, w2} {
		if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	took := waitFor(t, 60*time.Second, "new workers own every shard", func() bool {
		ls := e.leases()
		return len(owned(ls, "w3"))+len(owned(ls, "w4")) == n
	})
	for _, w := range []*worker{w1, w2} {
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not exit within 30 s of SIGTERM", w.id)
		}
	}
	// Keep producing a little, so a shard that stalled after the hand-over
	// shows as a gap.
	time.Sleep(2 * time.Second)
	ended := time.Now()
	want := prod.stop(t)
	got := e.waitProcessed(want, 60*time.Second, w1, w2, w3, w4)
	missing, dups := coverage(want, got)
	gap, shard := longestGap(t, began, ended, w1, w2, w3, w4)
	t.Logf("%d shards, rolling replacement: new workers owned every shard %.1f s after they started; longest processing gap %.1f s (shard %s); %d records, missing %d, duplicates %d",
		n, took.Seconds(), gap.Seconds(), shard, len(want), missing, dups)
	if gap > targetGap {
		t.Logf("longest processing gap %s on shard %s: over the %s target", gap, shard, targetGap)
	}
	if gap > targetGap+ciSlack {
		t.Errorf("longest processing gap %s on shard %s; want <= %s (+%s slack)", gap, shard, targetGap, ciSlack)
	}
	if dups != 0 {
		t.Errorf("%d duplicates across a rolling replacement; want 0", dups)
	}
}

func readyz(w *worker) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := httpGet(ctx, "http://"+w.ops+"/readyz")
	if err != nil {
		return 0
	}
	return req
}

// longestGap is the longest time between two consecutive processed
// batches of one shard within [from, to], from the audit logs' times
// (the edges count: a shard idle from `from` on is a gap too).
func longestGap(t *testing.T, from, to time.Time, ws ...*worker) (time.Duration, string) {
	t.Helper()
	times := map[string][]int64{}
	for _, w := range ws {
		f, err := os.Open(w.audit)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) != 5 {
				continue
			}
			ms, err := strconv.ParseInt(fs[4], 10, 64)
			if err != nil {
				continue
			}
			times[fs[0]] = append(times[fs[0]], ms)
		}
		f.Close()
	}
	var worst time.Duration
	var worstShard string
	for shard, ts := range times {
		slices.Sort(ts)
		prev := from.UnixMilli()
		for _, ms := range append(ts, to.UnixMilli()) {
			if ms < from.UnixMilli() {
				continue
			}
			if ms > to.UnixMilli() {
				ms = to.UnixMilli()
			}
			if d := time.Duration(ms-prev) * time.Millisecond; d > worst {
				worst, worstShard = d, shard
			}
			prev = ms
		}
	}
	return worst, worstShard
}

// producer writes rate records a second, spread over every shard, until
// stopped, and remembers the position of each record written.
type producer struct {
	mu     sync.Mutex
	want   map[pos]bool
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func (e *env) produce(t *testing.T, rate int) *producer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &producer{want: map[pos]bool{}, cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() { cancel(); <-p.done })
	per := max(1, rate/10)
	go func() {
		defer close(p.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			batch := make([]types.PutRecordsRequestEntry, per)
			for j := range batch {
				k := i*per + j
				hit := fmt.Sprintf(`{"ip":"10.0.%d.%d","user_agent":"Mozilla/5.0 test","path":"/p/%d","status":200,"bytes":%d,"timestamp":"%s","session_id":"s%d"}`,
					k%250, k%7, k, 100+k%900, time.Now().UTC().Format(time.RFC3339Nano), k%97)
				batch[j] = types.PutRecordsRequestEntry{Data: []byte(hit), PartitionKey: aws.String("k" + strconv.Itoa(k))}
			}
			for attempt := 0; len(batch) > 0; attempt++ {
				if attempt > 50 {
					p.fail(fmt.Errorf("PutRecords kept failing"))
					return
				}
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				res, err := e.kc.PutRecords(cctx, &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: batch})
				ccancel()
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				var retry []types.PutRecordsRequestEntry
				p.mu.Lock()
				for j, r := range res.Records {
					if r.ErrorCode != nil {
						retry = append(retry, batch[j])
						continue
					}
					p.want[pos{aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber), 0}] = true
				}
				p.mu.Unlock()
				batch = retry
			}
		}
	}()
	return p
}

func (p *producer) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

// snapshot returns the positions written so far.
func (p *producer) snapshot() map[pos]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[pos]bool, len(p.want))
	for k := range p.want {
		out[k] = true
	}
	return out
}

// stop ends production and returns every position written.
func (p *producer) stop(t *testing.T) map[pos]bool {
	t.Helper()
	p.cancel()
	<-p.done
	if p.err != nil {
		t.Fatal(p.err)
	}
	return p.snapshot()
}
