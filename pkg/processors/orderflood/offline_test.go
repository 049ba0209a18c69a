package orderflood

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// offAlarm is an alarm of the offline reference.
type offAlarm struct {
	t       time.Time
	n, trig int64
}

func (a offAlarm) String() string {
	return fmt.Sprintf("%s %d orders %d triggers", a.t.Format("2006-01-02T15:04:05.000"), a.n, a.trig)
}

// offlineAlarms is the reference for global mode, written as the SQL
// reads and independent of the processor: for each distinct order time t,
// the orders (lines, or distinct invoices) with times in [t-window, t]; a
// breach where that count reaches the threshold; an alarm at a breach
// when the previous alarm is at least the suppression older; its
// trigger_count is the breaches in [t-trigger_window, t].
func offlineAlarms(recs []records.Record, cfg Config) []offAlarm {
	var rs []records.Record
	for _, r := range recs {
		if r.Kind == records.KindOrder && (cfg.IncludeCancellations || !strings.HasPrefix(r.InvoiceNo, "C")) {
			rs = append(rs, r)
		}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Time.Before(rs[j].Time) })
	// count is the orders (lines or distinct invoices) in [t-window, t].
	count := func(t time.Time) int64 {
		hi := sort.Search(len(rs), func(k int) bool { return rs[k].Time.After(t) })
		lo := sort.Search(len(rs), func(k int) bool { return !rs[k].Time.Before(t.Add(-cfg.Window)) })
		if cfg.Count != CountInvoices {
			return int64(hi - lo)
		}
		inv := map[string]bool{}
		for _, r := range rs[lo:hi] {
			inv[r.InvoiceNo] = true
		}
		return int64(len(inv))
	}
	var breaches []time.Time
	for i := 0; i < len(rs); i++ {
		t := rs[i].Time
		if i > 0 && rs[i-1].Time.Equal(t) {
			continue
		}
		if n := count(t); n >= cfg.Threshold {
			breaches = append(breaches, t)
		}
	}
	var out []offAlarm
	for i, t := range breaches {
		if len(out) > 0 && t.Sub(out[len(out)-1].t) < cfg.Suppression {
			continue
		}
		var trig int64
		for _, b := range breaches[:i+1] {
			if !b.Before(t.Add(-cfg.TriggerWindow)) {
				trig++
			}
		}
		out = append(out, offAlarm{t, count(t), trig})
	}
	return out
}

// runFleet sends recs (in time order) through shards leases of one fleet,
// each record on a random shard as with partition key RANDOM, in rounds
// of 500 records, and returns the alarms recorded and the messages sent.
func runFleet(t *testing.T, recs []records.Record, cfg Config, shards int) ([]offAlarm, []processors.Message) {
	t.Helper()
	f := newFactory(t, cfg)
	store := processortest.NewStore()
	clock := processortest.NewClock(recs[0].Time)
	rnd := rand.New(rand.NewPCG(1, 2))
	leases := make([]*lease, shards)
	for i := range leases {
		leases[i] = newLease(t, f, store, clock, fmt.Sprintf("shardId-%012d", i))
	}
	parts := make([][]records.Record, shards)
	for lo := 0; lo < len(recs); lo += 500 {
		chunk := recs[lo:min(lo+500, len(recs))]
		for i := range parts {
			parts[i] = parts[i][:0]
		}
		for _, r := range chunk {
			k := rnd.IntN(shards)
			parts[k] = append(parts[k], r)
		}
		clock.Set(chunk[len(chunk)-1].Time.Add(time.Second))
		for i, l := range leases {
			if len(parts[i]) > 0 {
				l.batch(slices.Clone(parts[i]))
			} else {
				l.flush()
			}
		}
	}
	settle(clock, leases...)
	var msgs []processors.Message
	for _, l := range leases {
		msgs = append(msgs, l.msgs...)
	}
	if n := len(store.Items(testApp.Tables.Alarms)); n != len(msgs) {
		t.Errorf("%d alarm-history items, %d messages", n, len(msgs))
	}
	var got []offAlarm
	for _, m := range msgs {
		a := alarmOf(t, m)
		got = append(got, offAlarm{a.Time, a.Orders, a.TriggerCount})
	}
	slices.SortFunc(got, func(a, b offAlarm) int { return a.t.Compare(b.t) })
	return got, msgs
}

// TestDecemberOffline: the December 2010 orders on four shards with
// random partition keys raise exactly the alarms of the offline count,
// with its counts and trigger counts: order lines and distinct invoices,
// on event time and compressed 60x and 120x (what a replay at that speed
// gives with time: arrival).
func TestDecemberOffline(t *testing.T) {
	all := loadRecords(t, ordersFile, records.FormatOrdersCSV)
	t0 := all[0].Time
	for _, tc := range []struct {
		count string
		speed int
	}{{CountLines, 1}, {CountLines, 60}, {CountLines, 120}, {CountInvoices, 120}} {
		t.Run(fmt.Sprintf("%s-%dx", tc.count, tc.speed), func(t *testing.T) {
			recs := make([]records.Record, len(all))
			for i, r := range all {
				r.Time = t0.Add(r.Time.Sub(t0) / time.Duration(tc.speed))
				recs[i] = r
			}
			cfg := DefaultConfig()
			cfg.Count = tc.count
			want := offlineAlarms(recs, cfg)
			got, msgs := runFleet(t, recs, cfg, 4)
			if len(want) == 0 {
				t.Fatal("the offline count raises no alarm: the comparison would prove nothing")
			}
			if len(msgs) != len(want) {
				t.Errorf("%d messages, want %d (one per alarm)", len(msgs), len(want))
			}
			if diff := compareAlarms(want, got); diff != "" {
				t.Errorf("alarms differ from the offline count (-offline +got):\n%s", diff)
			}
			maxN, maxTrig := int64(0), int64(0)
			for _, a := range want {
				maxN, maxTrig = max(maxN, a.n), max(maxTrig, a.trig)
			}
			t.Logf("%s at %dx: %d alarms (largest %d in 15 s, most triggers %d); first %v", tc.count, tc.speed, len(want), maxN, maxTrig, want[0])
		})
	}
}

// compareAlarms compares alarms as text (-offline +got).
func compareAlarms(want, got []offAlarm) string {
	str := func(as []offAlarm) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.String()
		}
		return out
	}
	return cmp.Diff(str(want), str(got))
}
