package anomaly_test

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/anomaly"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// raceEnabled is set by race_test.go: scoring is ~10x slower under -race.
var raceEnabled bool

// run feeds recs to one lease in batches (clock 1 s ahead of the newest
// event time), ends the shard and returns the store and every message.
func run(tb testing.TB, f processors.Factory, recs []records.Record) (*processortest.Store, []processors.Message) {
	tb.Helper()
	ctx := tb.Context()
	h := &processortest.Harness{Factory: f, Store: processortest.NewStore(), Clock: processortest.NewClock(recs[0].EventTime()),
		Shard: processors.Shard{Stream: "web", ShardID: "shardId-000000000001", WorkerID: "w1"}}
	p, err := h.Start(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var msgs []processors.Message
	var wm time.Time
	for b := range slices.Chunk(recs, 200) {
		for i := range b {
			if et := b[i].EventTime(); et.After(wm) {
				wm = et
			}
		}
		h.Clock.Set(wm.Add(time.Second))
		rec, err := h.Batch(ctx, p, b)
		if err != nil {
			tb.Fatal(err)
		}
		msgs = append(msgs, rec.Messages...)
	}
	h.Clock.Advance(5 * time.Minute)
	rec, err := h.Close(ctx, p, processors.ShardEnded)
	if err != nil {
		tb.Fatal(err)
	}
	return h.Store, append(msgs, rec.Messages...)
}

// globals returns the final global items of the instance's windows of size.
func globals(s *processortest.Store, size string) []map[string]string {
	var out []map[string]string
	for _, it := range s.Items("demo-results") {
		pk, _ := window.GetStr(it, window.AttrPK)
		sk, _ := window.GetStr(it, window.AttrSK)
		final, _ := window.GetBool(it, window.AttrFinal)
		if strings.HasPrefix(pk, "anomaly#"+size+"#") && sk == window.GlobalSK && final {
			m := map[string]string{}
			for k, v := range it {
				m[k] = processortest.Printable(v)
			}
			top, _ := window.GetStr(it, "top")
			m["top"] = top
			out = append(out, m)
		}
	}
	return out
}

// TestIoTExample is issue 20's acceptance run through the processor: the
// KDA IoT example (100,000 seeded readings, ~1% anomalous, four sensors,
// default forests), results read from the per-second top lists and the
// per-minute distributions. Recall is measured as in pkg/rcf's
// evaluation: of the top 1% of scores (1,000 points), the share that are
// anomalies must reach 95% of min(anomalies, 1,000). Normal readings above
// the alarm threshold (2.0) must be under 1%.
func TestIoTExample(t *testing.T) {
	n := 100_000
	if testing.Short() || raceEnabled {
		n = 20_000
	}
	recs, anomalous := iot(t, n, 100)
	type id struct {
		key string
		at  time.Time
	}
	isAnomaly := map[id]bool{}
	anomalies := 0
	for i := range recs {
		if anomalous[i] {
			anomalies++
			isAnomaly[id{recs[i].Key, recs[i].EventTime().UTC()}] = true
		}
	}
	start := time.Now()
	store, msgs := run(t, build(t, "values: 1\ntop: 10\n"), recs)
	elapsed := time.Since(start)

	var tops []anomaly.Point
	for _, g := range globals(store, "1s") {
		var ps []anomaly.Point
		if err := json.Unmarshal([]byte(g["top"]), &ps); err != nil {
			t.Fatal(err)
		}
		tops = append(tops, ps...)
	}
	slices.SortFunc(tops, func(a, b anomaly.Point) int { return cmp.Compare(b.Score, a.Score) })
	k := n / 100
	hits, anomalyAbove := 0, 0
	for i, p := range tops {
		a := isAnomaly[id{p.Key, p.Time}]
		if i < k && a {
			hits++
		}
		if a && p.Score > 2.0 {
			anomalyAbove++
		}
	}
	var above, points int64
	for _, g := range globals(store, "60s") {
		above += atoi(t, strings.TrimPrefix(g["above_threshold"], "N:"))
		points += atoi(t, strings.TrimPrefix(g["points"], "N:"))
	}
	normalAbove := above - int64(anomalyAbove) // upper bound: anomalies outside every top list count as normal
	recall := float64(hits) / float64(min(anomalies, k))
	t.Logf("%d readings, %d anomalies; top 1%% (%d): %d anomalies, recall %.4f of min(anomalies, top 1%%); above 2.0: %d points, normal <= %d (%.3f%%); %d alarms; %.1f µs per reading through the processor",
		n, anomalies, k, hits, recall, above, normalAbove, 100*float64(normalAbove)/float64(n-anomalies), len(msgs), float64(elapsed.Microseconds())/float64(n))
	if points != int64(n) {
		t.Errorf("distribution counts %d points, want %d", points, n)
	}
	if recall < 0.95 {
		t.Errorf("recall in the top 1%% = %.4f, want >= 0.95", recall)
	}
	if float64(normalAbove) >= 0.01*float64(n-anomalies) {
		t.Errorf("%d normal readings above the threshold, want < 1%%", normalAbove)
	}
}

func atoi(tb testing.TB, s string) int64 {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			tb.Fatalf("not a count: %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// accessLog decodes the real access log (skips without ../shared/data).
func accessLog(tb testing.TB) []records.Record {
	tb.Helper()
	raw, err := os.ReadFile(testenv.SharedData(tb, "access/zaker-access-10k.log"))
	if err != nil {
		tb.Fatal(err)
	}
	dec, err := records.NewDecoder(records.FormatCombined)
	if err != nil {
		tb.Fatal(err)
	}
	var out []records.Record
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r records.Record
		if dec.Decode(bytes.Clone(sc.Bytes()), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// TestAccessLogSpike replays the real access log with a 10x request spike
// on one host for 30 s: every line of that host (the log has no virtual
// host, so every line is host "-") inside the spike is written ten times.
// The spike must raise exactly one alarm, within 5 s of event time; the
// same log without the spike none.
func TestAccessLogSpike(t *testing.T) {
	if raceEnabled {
		t.Skip("slow under -race")
	}
	log := accessLog(t)
	spikeAt := log[len(log)/2].EventTime().Truncate(time.Second)
	spikeEnd := spikeAt.Add(30 * time.Second)
	var spiked []records.Record
	for _, r := range log {
		spiked = append(spiked, r)
		if et := r.EventTime(); !et.Before(spikeAt) && et.Before(spikeEnd) {
			for range 9 {
				spiked = append(spiked, r)
			}
		}
	}
	settings := "input: traffic\n"
	for _, tc := range []struct {
		name string
		recs []records.Record
		want int
	}{{"without-spike", log, 0}, {"with-spike", spiked, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			_, msgs := run(t, build(t, settings), processortest.Sequence("shardId-000000000001", slices.Clone(tc.recs)))
			for _, m := range msgs {
				t.Logf("alarm: %s %s", m.Subject, m.Body)
			}
			if len(msgs) != tc.want {
				t.Fatalf("%d alarms, want %d", len(msgs), tc.want)
			}
			if tc.want == 0 {
				return
			}
			var a anomaly.Alarm
			if err := json.Unmarshal(msgs[0].Body, &a); err != nil {
				t.Fatal(err)
			}
			delay := a.Watermark.Sub(spikeAt)
			t.Logf("spike %s-%s: alarm for second %s (score %.2f), raised at event time %s: %s after the spike began",
				spikeAt.UTC().Format(time.TimeOnly), spikeEnd.UTC().Format(time.TimeOnly), a.Time.Format(time.TimeOnly), a.Score, a.Watermark.Format(time.TimeOnly), delay)
			if a.Time.Before(spikeAt) || !a.Time.Before(spikeEnd) || delay > 5*time.Second {
				t.Errorf("alarm for %s raised at event time %s, want a spike second within 5 s of %s", a.Time, a.Watermark, spikeAt)
			}
		})
	}
}
