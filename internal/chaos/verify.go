package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/shardwatch/shardwatch/pkg/processors/topn"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

// finish closes every window with sentinels, waits for the fleet to
// process everything and checks the results.
func (h *run) finish(ctx context.Context) error {
	r := h.report
	live := map[string]bool{}
	for _, p := range h.fleet.Procs() {
		if p.Alive() {
			if p.stopped {
				_ = p.Signal(syscall.SIGCONT)
			}
			live[slotOf(p.ID)] = true
		}
	}
	for i := 1; i <= h.cfg.Workers; i++ {
		if slot := "w" + strconv.Itoa(i); !live[slot] {
			if _, err := h.fleet.Start(slot); err != nil {
				return err
			}
		}
	}
	// One hit and one order per shard, two hours after the data.
	sentinel := h.wl.Base.Add(time.Duration(h.lastSec)*time.Second + 2*time.Hour)
	for i, s := range h.shards {
		es := Sentinel(sentinel, i)
		if err := h.put(ctx, es, []string{aws.ToString(s.HashKeyRange.StartingHashKey), aws.ToString(s.HashKeyRange.StartingHashKey)}); err != nil {
			return fmt.Errorf("chaos: sentinels: %w", err)
		}
	}
	want, off, err := h.readStream(ctx)
	if err != nil {
		return err
	}
	r.Records = len(want)
	if off.Bad > 0 {
		r.fail("%d records in the stream are not the harness's JSON", off.Bad)
	}
	h.logf("stream holds %d records; waiting for the fleet to process them", len(want))

	deadline := time.Now().Add(h.cfg.SettleTimeout)
	var got map[Pos]int
	for {
		_ = h.audit.poll(h.fleet.Procs())
		got = h.audit.snapshot()
		missing := 0
		for p := range want {
			if got[p] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			r.Missing = missing
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for p := range want {
		if c := got[p]; c > 1 {
			r.Duplicates += c - 1
		}
	}
	for p := range got {
		if !want[p] {
			r.fail("audit logs a position the stream does not hold: %v", p)
			break
		}
	}
	// A fault can replay, per shard, what was processed since the last
	// checkpoint: one batch, two when a checkpoint had failed before.
	r.DuplicateBound = len(r.Faults) * len(h.shards) * h.cfg.MaxRecords * 2
	if r.Missing > 0 {
		r.fail("%d records were never processed", r.Missing)
	}
	if r.Duplicates > r.DuplicateBound {
		r.fail("%d duplicates exceed the in-flight bound %d", r.Duplicates, r.DuplicateBound)
	}
	h.logf("all records processed (%d duplicates); waiting for exact results", r.Duplicates)

	cutoff := sentinel.Truncate(time.Hour) // data windows end before this
	var problems []string
	// Alarms are decided once every shard's frontier has passed them:
	// wait for them too (checkAlarms reports what is missing).
	for {
		problems = h.checkResults(ctx, off, cutoff)
		if (len(problems) == 0 && h.alarmsPublished(ctx, off, cutoff)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	r.Problems = append(r.Problems, problems...)
	h.checkAlarms(ctx, off, cutoff)
	h.checkLeases(ctx)
	r.DeadLetters = countLines(filepath.Join(h.cfg.Dir, "deadletter.jsonl"))
	if r.DeadLetters > 0 {
		r.fail("%d records were dead-lettered; the workload has no bad records", r.DeadLetters)
	}
	return nil
}

// readStream reads every shard from TRIM_HORIZON.
func (h *run) readStream(ctx context.Context) (map[Pos]bool, *Offline, error) {
	want := map[Pos]bool{}
	off := NewOffline()
	for _, s := range h.shards {
		it, err := h.cl.Kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(h.stream), ShardId: s.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			return nil, nil, fmt.Errorf("chaos: read back: %w", err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := h.cl.Kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				return nil, nil, fmt.Errorf("chaos: read back: %w", err)
			}
			for _, rec := range out.Records {
				want[Pos{aws.ToString(s.ShardId), aws.ToString(rec.SequenceNumber), 0}] = true
				off.Add(rec.Data)
			}
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return want, off, nil
}

// checkResults compares DynamoDB with the offline aggregate; it returns the
// differences.
func (h *run) checkResults(ctx context.Context, off *Offline, cutoff time.Time) []string {
	var out []string
	r := h.report
	results, counters := h.app+"-results", h.app+"-counters"
	keys := topn.Keys(time.Minute)
	r.TopNWindows, r.CounterBuckets, r.OrderSeconds = 0, 0, 0
	for _, start := range sortedTimes(off.Windows) {
		if !start.Before(cutoff) {
			continue
		}
		r.TopNWindows++
		w := off.Windows[start]
		item, err := h.getItem(ctx, results, map[string]dtypes.AttributeValue{"pk": window.Str(keys.Window(start)), "sk": window.Str(window.GlobalSK)})
		if err != nil || item == nil {
			out = append(out, fmt.Sprintf("topn %s: no global item (%v)", start.Format(time.RFC3339), err))
			continue
		}
		g, err := topn.ParseGlobal(item)
		if err != nil {
			out = append(out, fmt.Sprintf("topn %s: %v", start.Format(time.RFC3339), err))
			continue
		}
		if g.Requests != w.Requests || g.Bytes != w.Bytes || g.Finals != g.Merged {
			out = append(out, fmt.Sprintf("topn %s: requests %d bytes %d (final %d/%d); offline %d %d",
				start.Format(time.RFC3339), g.Requests, g.Bytes, g.Finals, g.Merged, w.Requests, w.Bytes))
			continue
		}
		var wantTop []int64
		for _, c := range w.IPs {
			wantTop = append(wantTop, c[0])
		}
		slices.SortFunc(wantTop, func(a, b int64) int { return int(b - a) })
		wantTop = wantTop[:min(len(wantTop), len(g.TopRequests))]
		var gotTop []int64
		for _, row := range g.TopRequests {
			c := w.IPs[row.Key]
			if row.Requests != c[0] || row.Bytes != c[1] || row.ErrRequests != 0 {
				out = append(out, fmt.Sprintf("topn %s: IP %s requests %d bytes %d err %d; offline %d %d",
					start.Format(time.RFC3339), row.Key, row.Requests, row.Bytes, row.ErrRequests, c[0], c[1]))
			}
			gotTop = append(gotTop, row.Requests)
		}
		if !slices.Equal(gotTop, wantTop) {
			out = append(out, fmt.Sprintf("topn %s: top counts %v; offline %v", start.Format(time.RFC3339), gotTop, wantTop))
		}
	}
	for _, event := range sortedKeys(off.Counters) {
		if event == "sentinel" {
			continue
		}
		for bucket, n := range off.Counters[event] {
			if !bucketBefore(bucket, cutoff) {
				continue
			}
			r.CounterBuckets++
			item, err := h.getItem(ctx, counters, map[string]dtypes.AttributeValue{"event": window.Str(event), "bucket": window.Str(bucket)})
			if err != nil || item == nil {
				out = append(out, fmt.Sprintf("counter %s %s: no item (%v)", event, bucket, err))
				continue
			}
			got, final := num(item["count"]), boolAttr(item["final"])
			if got != n || !final {
				out = append(out, fmt.Sprintf("counter %s %s = %d (final %v); offline %d", event, bucket, got, final, n))
			}
		}
	}
	perMinute := map[string]map[string]int64{}
	for sec, n := range off.OrdersPerSecond {
		if !sec.Before(cutoff) {
			continue
		}
		r.OrderSeconds++
		pk := "orders#order-flood#" + sec.Format("2006-01-02T15:04")
		if perMinute[pk] == nil {
			items, err := h.query(ctx, results, "pk", pk)
			if err != nil {
				out = append(out, fmt.Sprintf("orders %s: %v", pk, err))
				continue
			}
			m := map[string]int64{}
			for _, it := range items {
				sk := str(it["sk"])
				second, _, _ := strings.Cut(sk, "#")
				m[second] += num(it["orders"])
			}
			perMinute[pk] = m
		}
		if got := perMinute[pk][window.FormatTime(sec)]; got != n {
			out = append(out, fmt.Sprintf("orders %s = %d; offline %d", window.FormatTime(sec), got, n))
		}
	}
	sort.Strings(out)
	return out
}

// expectedAlarms returns the offline alarms (second -> count) and the
// ones before cutoff, which must exist.
func expectedAlarms(off *Offline, cutoff time.Time) (map[time.Time]int64, map[time.Time]bool) {
	counts := off.Alarms(15*time.Second, time.Minute, 30)
	expected := map[time.Time]bool{}
	for t := range counts {
		if t.Before(cutoff) {
			expected[t] = true
		}
	}
	return counts, expected
}

// alarmsPublished reports whether every expected alarm is in the history
// in state published.
func (h *run) alarmsPublished(ctx context.Context, off *Offline, cutoff time.Time) bool {
	_, expected := expectedAlarms(off, cutoff)
	items, err := h.query(ctx, h.app+"-alarms", "alarm", "order-flood")
	if err != nil {
		return false
	}
	n := 0
	for _, it := range items {
		t, err := time.Parse(time.RFC3339, str(it["period"]))
		if err == nil && expected[t] && str(it["state"]) == "published" {
			n++
		}
	}
	return n >= len(expected)
}

// checkAlarms: exactly the offline alarms (time and count) and no other;
// the SNS messages per alarm are reported.
func (h *run) checkAlarms(ctx context.Context, off *Offline, cutoff time.Time) {
	r := h.report
	counts, expected := expectedAlarms(off, cutoff)
	r.AlarmPeriods = len(expected)
	items, err := h.query(ctx, h.app+"-alarms", "alarm", "order-flood")
	if err != nil {
		r.fail("alarm history: %v", err)
		return
	}
	got := map[time.Time]int{}
	dedups := map[time.Time]string{}
	for _, it := range items {
		t, err := time.Parse(time.RFC3339, str(it["period"]))
		if err != nil {
			r.fail("alarm period %q: %v", str(it["period"]), err)
			continue
		}
		got[t]++
		dedups[t] = str(it["dedup_id"])
		if n := num(it["orders"]); expected[t] && n != counts[t] {
			r.fail("alarm %s: %d orders; offline %d", t.Format(time.RFC3339), n, counts[t])
		}
		if st := str(it["state"]); st != "published" {
			r.fail("alarm period %s: history state %q; want published", t.Format(time.RFC3339), st)
		}
	}
	r.AlarmItems = len(items)
	for p := range expected {
		if got[p] != 1 {
			r.fail("alarm period %s: %d history items; want 1", p.Format(time.RFC3339), got[p])
		}
	}
	for p := range got {
		if !expected[p] {
			r.fail("alarm in period %s, where the offline count never breaches", p.Format(time.RFC3339))
		}
	}
	// SNS: goaws delivers to the queue at publish time.
	type msg struct{ period, dedup string }
	var msgs []msg
	for empty := 0; empty < 3; {
		out, err := h.cl.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(h.queue), MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			r.fail("receive alarms: %v", err)
			return
		}
		if len(out.Messages) == 0 {
			// Nothing is in flight (the workers are done): a few empty
			// receives in a row mean the queue is drained.
			empty++
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for _, m := range out.Messages {
			var body struct {
				Period  string `json:"period"`
				DedupID string `json:"dedup_id"`
			}
			_ = json.Unmarshal([]byte(sqsMessage(aws.ToString(m.Body))), &body)
			if a, ok := m.MessageAttributes["dedup_id"]; !ok || aws.ToString(a.StringValue) != body.DedupID {
				r.fail("alarm period %s: message attribute dedup_id %v differs from the body's %q", body.Period, a.StringValue, body.DedupID)
			}
			msgs = append(msgs, msg{body.Period, body.DedupID})
			r.SNSMessages++
			_, _ = h.cl.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(h.queue), ReceiptHandle: m.ReceiptHandle})
		}
	}
	repub, err := h.rePublishes()
	if err != nil {
		r.fail("worker logs: %v", err)
	}
	for _, n := range repub {
		r.RePublishes += n
	}
	// The guarantee per topic kind (pkg/processors/orderflood/README.md):
	// every message of a period carries the history item's dedup_id, and
	// the period has exactly one message, plus one repeat per re-publish
	// of a claim found in publishing (a worker killed between a publish
	// and its record). After de-duplication on dedup_id (SNS does it on a
	// FIFO topic, a subscriber on a standard one) exactly one remains.
	byPeriod := map[string][]string{}
	for _, m := range msgs {
		byPeriod[m.period] = append(byPeriod[m.period], m.dedup)
	}
	for p := range expected {
		key := window.FormatTime(p)
		ids := byPeriod[key]
		want := dedups[p]
		distinct := map[string]bool{}
		for _, id := range ids {
			distinct[id] = true
			if id != want {
				r.fail("alarm period %s: message dedup_id %q; the history item says %q", key, id, want)
			}
		}
		r.SNSDelivered += len(distinct)
		repeats := len(ids) - len(distinct)
		r.SNSRepeats += repeats
		switch {
		case len(distinct) != 1:
			r.fail("alarm period %s: %d distinct dedup_ids in %d SNS messages; want exactly 1", key, len(distinct), len(ids))
		case repeats > repub[want]:
			r.fail("alarm period %s: %d SNS messages, %d re-publishes logged; want exactly 1 plus one per re-publish", key, len(ids), repub[want])
		}
	}
}

// sqsMessage returns the alarm an SQS subscriber with raw message delivery
// gets. Alarms are published with MessageStructure json; SNS delivers the
// "sqs" entry, goaws 0.5 the whole structure, so the entry is taken from
// it here.
func sqsMessage(body string) string {
	var structure map[string]string
	if json.Unmarshal([]byte(body), &structure) == nil && structure["sqs"] != "" {
		return structure["sqs"]
	}
	return body
}

// rePublishes counts, per dedup_id, the workers' log lines saying an
// alarm claim found in state publishing was published again.
func (h *run) rePublishes() (map[string]int, error) {
	logs, err := filepath.Glob(filepath.Join(h.cfg.Dir, "worker-*.log"))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if !bytes.Contains(line, []byte("publishing again an alarm")) {
				continue
			}
			var l struct {
				DedupID string `json:"dedup_id"`
			}
			if json.Unmarshal(line, &l) == nil && l.DedupID != "" {
				out[l.DedupID]++
			}
		}
	}
	return out, nil
}

// checkLeases: every shard is owned by a live worker at the end.
func (h *run) checkLeases(ctx context.Context) {
	live := map[string]bool{}
	for _, p := range h.fleet.Live() {
		live[p.ID] = true
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		owners := h.owners(ctx)
		var bad []string
		for _, s := range h.shards {
			id := aws.ToString(s.ShardId)
			if o := owners[id]; !live[o] {
				bad = append(bad, fmt.Sprintf("shard %s owned by %q, not a live worker", id, o))
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.report.Problems = append(h.report.Problems, bad...)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (h *run) getItem(ctx context.Context, table string, key map[string]dtypes.AttributeValue) (map[string]dtypes.AttributeValue, error) {
	out, err := h.cl.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func (h *run) query(ctx context.Context, table, pkName, pk string) ([]map[string]dtypes.AttributeValue, error) {
	var items []map[string]dtypes.AttributeValue
	var start map[string]dtypes.AttributeValue
	for {
		out, err := h.cl.DynamoDB.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(table), ConsistentRead: aws.Bool(true), ExclusiveStartKey: start,
			KeyConditionExpression:    aws.String("#k = :v"),
			ExpressionAttributeNames:  map[string]string{"#k": pkName},
			ExpressionAttributeValues: map[string]dtypes.AttributeValue{":v": window.Str(pk)},
		})
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		start = out.LastEvaluatedKey
	}
}

func str(v dtypes.AttributeValue) string {
	if s, ok := v.(*dtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func num(v dtypes.AttributeValue) int64 {
	if n, ok := v.(*dtypes.AttributeValueMemberN); ok {
		x, _ := strconv.ParseInt(n.Value, 10, 64)
		return x
	}
	return -1
}

func boolAttr(v dtypes.AttributeValue) bool {
	b, ok := v.(*dtypes.AttributeValueMemberBOOL)
	return ok && b.Value
}

// bucketBefore: "2006-01-02T15" or "2006-01-02T15:04" starts before t.
func bucketBefore(bucket string, t time.Time) bool {
	layout := "2006-01-02T15"
	if len(bucket) > len(layout) {
		layout = "2006-01-02T15:04"
	}
	b, err := time.Parse(layout, bucket)
	return err == nil && b.Before(t)
}

func sortedTimes[V any](m map[time.Time]V) []time.Time {
	out := make([]time.Time, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}
