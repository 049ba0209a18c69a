package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// tailer follows the workers' audit logs. A worker appends a record's
// position after the record's results are durably written and before it
// checkpoints, so the moment a line appears is the record's "result
// written" time (read every 10 ms: at most that much late).
type tailer struct {
	mu    sync.Mutex
	seen  map[uint64]int64 // posKey -> first seen, unix ns
	dups  int
	lines int
}

func newTailer(hint int) *tailer { return &tailer{seen: make(map[uint64]int64, hint)} }

// follow reads paths until ctx ends. A file that does not exist yet is
// retried (a worker creates its log when it starts).
func (t *tailer) follow(ctx context.Context, paths []string) {
	type file struct {
		f       *os.File
		partial []byte
	}
	files := make([]file, len(paths))
	defer func() {
		for _, f := range files {
			if f.f != nil {
				f.f.Close()
			}
		}
	}()
	buf := make([]byte, 256<<10)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for i := range files {
			f := &files[i]
			if f.f == nil {
				var err error
				if f.f, err = os.Open(paths[i]); err != nil {
					continue
				}
			}
			for {
				n, err := f.f.Read(buf)
				if n > 0 {
					now := time.Now().UnixNano()
					data := append(f.partial, buf[:n]...)
					end := bytes.LastIndexByte(data, '\n')
					if end < 0 {
						f.partial = data
					} else {
						t.add(data[:end+1], now)
						f.partial = append(f.partial[:0:0], data[end+1:]...)
					}
				}
				if err != nil || n < len(buf) {
					if err != nil && !errors.Is(err, io.EOF) {
						f.f.Close()
						f.f = nil
					}
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// add records lines "shard seq subseq worker".
func (t *tailer) add(data []byte, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		line := data[:nl]
		data = data[nl+1:]
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		rest := line[sp+1:]
		sp2 := bytes.IndexByte(rest, ' ')
		if sp2 < 0 {
			continue
		}
		k := posKey(string(line[:sp]), string(rest[:sp2]))
		t.lines++
		if _, ok := t.seen[k]; ok {
			t.dups++
			continue
		}
		t.seen[k] = now
	}
}

// count returns how many of keys were seen and the latest sighting.
func (t *tailer) count(keys []uint64) (n int, last int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if s, ok := t.seen[k]; ok {
			n++
			last = max(last, s)
		}
	}
	return n, last
}

// latencies returns seen - put per key seen, in milliseconds.
func (t *tailer) latencies(p *producer, keys []uint64) []float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]float64, 0, len(keys))
	for _, k := range keys {
		s, ok := t.seen[k]
		if !ok {
			continue
		}
		if put, ok := p.putTime(k); ok {
			out = append(out, float64(s-put)/1e6)
		}
	}
	return out
}

func (t *tailer) duplicates() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dups
}

// alarmWatch receives the alarms the consumer publishes (SNS -> SQS) and
// notes when each arrived (polled every 25 ms).
type alarmWatch struct {
	mu       sync.Mutex
	received []time.Time
}

func (a *alarmWatch) watch(ctx context.Context, c *sqs.Client, queueURL string) {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
		if err == nil && len(out.Messages) > 0 {
			now := time.Now()
			del := make([]sqstypes.DeleteMessageBatchRequestEntry, 0, len(out.Messages))
			a.mu.Lock()
			for _, m := range out.Messages {
				a.received = append(a.received, now)
				del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: m.MessageId, ReceiptHandle: m.ReceiptHandle})
			}
			a.mu.Unlock()
			_, _ = c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: del})
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// match pairs every burst with the first alarm received after it and
// before the next burst: the put-to-alarm latencies (ms), the bursts
// without an alarm, and the alarms that matched no burst.
func (a *alarmWatch) match(bursts []time.Time) (lat []float64, missed, extra int) {
	a.mu.Lock()
	recv := slices.Clone(a.received)
	a.mu.Unlock()
	slices.SortFunc(recv, func(x, y time.Time) int { return x.Compare(y) })
	used := make([]bool, len(recv))
	for i, b := range bursts {
		next := time.Time{}
		if i+1 < len(bursts) {
			next = bursts[i+1]
		}
		found := false
		for j, r := range recv {
			if used[j] || r.Before(b) || (!next.IsZero() && !r.Before(next)) {
				continue
			}
			used[j] = true
			lat = append(lat, float64(r.Sub(b))/1e6)
			found = true
			break
		}
		if !found {
			missed++
		}
	}
	for _, u := range used {
		if !u {
			extra++
		}
	}
	return lat, missed, extra
}
