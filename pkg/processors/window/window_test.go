package window_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

func TestPositionCompare(t *testing.T) {
	tests := []struct {
		a, b window.Position
		want int
	}{
		{window.Position{}, window.Position{}, 0},
		{window.Position{}, window.Position{Seq: "1"}, -1},
		{window.Position{Seq: "9"}, window.Position{Seq: "10"}, -1},   // numeric, not lexical
		{window.Position{Seq: "0010"}, window.Position{Seq: "10"}, 0}, // leading zeros
		{window.Position{Seq: "49590338271490256608559692538361571095921575989136588898"}, window.Position{Seq: "49590338271490256608559692538361571095921575989136588899"}, -1},
		{window.Position{Seq: "5", Sub: 2}, window.Position{Seq: "5", Sub: 1}, 1},
		{window.Position{Seq: "5", Sub: 2}, window.Position{Seq: "6"}, -1},
	}
	for _, tt := range tests {
		if got := tt.a.Compare(tt.b); got != tt.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := tt.b.Compare(tt.a); got != -tt.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestParsePosition(t *testing.T) {
	for _, p := range []window.Position{{}, {Seq: "123"}, {Seq: "4959", Sub: 42}} {
		got, err := window.ParsePosition(p.String())
		if err != nil {
			t.Fatal(err)
		}
		if got != p {
			t.Errorf("round trip of %v = %v", p, got)
		}
	}
	for _, s := range []string{"123", "#1", "abc#1", "12#x", "12#-1"} {
		if _, err := window.ParsePosition(s); !errors.Is(err, window.ErrBadPosition) {
			t.Errorf("ParsePosition(%q) = %v, want ErrBadPosition", s, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  window.Config
		want string
	}{
		{window.Config{Size: time.Minute, Grace: 5 * time.Second}, ""},
		{window.Config{Size: 500 * time.Millisecond}, "p.window: must be >= 1s"},
		{window.Config{Size: 1500 * time.Millisecond}, "p.window: must be a whole number of seconds"},
		{window.Config{Size: 7 * time.Second}, "p.window: must divide 24h evenly (windows align to UTC days)"},
		{window.Config{Size: time.Minute, Grace: -1}, "p.grace: must be >= 0"},
		{window.Config{Size: time.Minute, Idle: -1}, "p.idle: must be >= 0"},
	}
	for _, tt := range tests {
		got := ""
		if err := tt.cfg.Validate("p"); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Validate(%+v) = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

var t0 = time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)

func pos(i int) window.Position { return window.Position{Seq: processortest.SeqNum(i)} }

type step struct {
	at      time.Duration // event time offset from t0; -1 = undated
	verdict window.Verdict
}

func TestTrackerVerdicts(t *testing.T) {
	cfg := window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second}
	tr := window.NewTracker(cfg, func() *int { return new(int) })
	steps := []step{
		{10 * time.Second, window.Accepted},
		{-1, window.Undated},
		{64 * time.Second, window.Accepted}, // opens 9:42; 9:41 in grace
		{59 * time.Second, window.Accepted}, // inside grace
		{65 * time.Second, window.Accepted}, // watermark reaches 9:42:05: 9:41 due
		{30 * time.Second, window.Late},     // due, not yet expired: still late
		{-30 * time.Second, window.Late},    // older window never opened
	}
	var got []window.Verdict
	for i, s := range steps {
		ev := t0.Add(s.at)
		if s.at == -1 {
			ev = time.Time{}
		}
		w, v := tr.Add(ev, pos(i))
		if (w != nil) != (v == window.Accepted) {
			t.Errorf("step %d: window %v with verdict %s", i, w, v)
		}
		if w != nil {
			*w.State++
		}
		got = append(got, v)
	}
	want := make([]window.Verdict, len(steps))
	for i, s := range steps {
		want[i] = s.verdict
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	closed := tr.Expire(t0.Add(70 * time.Second))
	if len(closed) != 1 || !closed[0].Start.Equal(t0) || *closed[0].State != 2 {
		t.Fatalf("Expire closed %d windows, want 9:41 with 2 records", len(closed))
	}
	if diff := cmp.Diff(window.Counts{Accepted: 4, Late: 2, Undated: 1}, tr.TakeCounts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if _, v := tr.Add(t0.Add(20*time.Second), pos(100)); v != window.Late {
		t.Errorf("record for a closed window: %s, want late", v)
	}
}

func TestTrackerIdleClose(t *testing.T) {
	cfg := window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second}
	tr := window.NewTracker(cfg, func() int { return 0 })
	// Replaying year-old data: the clock is far ahead of event time, but
	// records keep arriving, so only the watermark closes windows.
	old := t0.AddDate(-1, 0, 0)
	var now time.Time
	for i := range 10 {
		now = t0.Add(time.Duration(i) * time.Second)
		tr.Add(old.Add(time.Duration(i)*time.Second), pos(i))
		if n := len(tr.Expire(now)); n != 0 {
			t.Fatalf("flush %d after records closed %d windows while the shard was active", i, n)
		}
	}
	// Idle for less than Idle: still open.
	if n := len(tr.Expire(now.Add(29 * time.Second))); n != 0 {
		t.Fatalf("closed %d windows before the idle allowance", n)
	}
	if n := len(tr.Expire(now.Add(30 * time.Second))); n != 1 {
		t.Fatalf("idle shard closed %d windows, want 1", n)
	}
	// Live data: window end+grace+idle must pass on the clock.
	tr = window.NewTracker(cfg, func() int { return 0 })
	tr.Add(t0.Add(10*time.Second), pos(1))
	tr.Expire(t0.Add(11 * time.Second))
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{60 * time.Second, 0}, {94 * time.Second, 0}, {95 * time.Second, 1}} {
		if n := len(tr.Expire(t0.Add(tc.at))); n != tc.want {
			t.Errorf("clock t0+%s: closed %d, want %d", tc.at, n, tc.want)
		}
	}
}

func TestTrackerAdvance(t *testing.T) {
	cfg := window.Config{Size: time.Second, Grace: 500 * time.Millisecond, Idle: time.Hour}
	tr := window.NewTracker(cfg, func() int { return 0 })
	tr.Add(t0.Add(200*time.Millisecond), pos(1))
	tr.Advance(t0.Add(1400 * time.Millisecond))
	if n := len(tr.Expire(t0)); n != 0 || !tr.Watermark().Equal(t0.Add(1400*time.Millisecond)) {
		t.Fatalf("advanced within grace: closed %d, watermark %s", n, tr.Watermark())
	}
	tr.Advance(t0.Add(time.Second)) // never backwards
	tr.Advance(t0.Add(1500 * time.Millisecond))
	if n := len(tr.Expire(t0)); n != 1 {
		t.Fatalf("advanced past end+grace: closed %d windows, want 1", n)
	}
	if _, v := tr.Add(t0.Add(900*time.Millisecond), pos(2)); v != window.Late {
		t.Errorf("record of the closed second: %s, want late", v)
	}
	tr.Add(t0.Add(1200*time.Millisecond), pos(3))
	tr.SetFloor(t0.Add(1300 * time.Millisecond))
	for i, c := range []struct {
		at   time.Duration
		want window.Verdict
	}{{1250 * time.Millisecond, window.Late}, {1300 * time.Millisecond, window.Accepted}, {1350 * time.Millisecond, window.Accepted}} {
		if _, v := tr.Add(t0.Add(c.at), pos(4+i)); v != c.want {
			t.Errorf("floor t0+1.3s, record at t0+%s: %s, want %s", c.at, v, c.want)
		}
	}
}

func TestTrackerRestoreSkipsReplayed(t *testing.T) {
	cfg := window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second}
	first := window.NewTracker(cfg, func() int { return 0 })
	for i := range 6 { // 9:41:00..9:41:50 and 9:42:00..
		if w, v := first.Add(t0.Add(time.Duration(i)*13*time.Second), pos(i)); v == window.Accepted {
			w.State++
		}
	}
	first.Expire(t0.Add(70 * time.Second))
	cur := first.Cursor()

	// The cursor survives an item round trip.
	keys := window.NewKeys("hits", time.Minute)
	item := window.CursorItem("demo-results", keys, "shardId-1", cur, t0.Add(time.Hour))
	back, err := window.ParseCursor(item.Attrs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cur, back); diff != "" {
		t.Errorf("cursor round trip (-want +got):\n%s", diff)
	}

	next := window.NewTracker(cfg, func() int { return 0 })
	next.RestoreCursor(back)
	for _, w := range first.Open() {
		next.Restore(w.Start, w.State, w.Covered, false)
	}
	var verdicts []window.Verdict
	for i := 3; i < 8; i++ { // 3..5 are replays, 6..7 new
		_, v := next.Add(t0.Add(time.Duration(i)*13*time.Second), pos(i))
		verdicts = append(verdicts, v)
	}
	want := []window.Verdict{window.Replayed, window.Replayed, window.Replayed, window.Accepted, window.Accepted}
	if diff := cmp.Diff(want, verdicts); diff != "" {
		t.Errorf("verdicts after restore (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	store := processortest.NewStore()
	keys := window.NewKeys("hits", time.Minute)
	ctx := context.Background()
	if _, _, found, err := window.Load(ctx, store, "r", keys, "s1"); err != nil || found {
		t.Fatalf("Load on empty store = found %v, %v", found, err)
	}
	cur := window.Cursor{Watermark: t0.Add(61 * time.Second), ClosedUpTo: t0, Position: pos(7), Windows: []time.Time{t0, t0.Add(time.Minute)}}
	hd := window.Header{PK: keys.Window(t0), SK: window.ShardSK("s1"), Kind: window.KindPartial, Shard: "s1", Start: t0, End: t0.Add(time.Minute), Pos: pos(5), Final: true, ExpiresAt: t0.Add(time.Hour)}
	if err := store.Apply([]processors.Item{
		window.CursorItem("r", keys, "s1", cur, t0.Add(time.Hour)),
		{Table: "r", Key: "p", Attrs: hd.Attrs(0)},
	}); err != nil {
		t.Fatal(err)
	}
	got, partials, found, err := window.Load(ctx, store, "r", keys, "s1")
	if err != nil || !found {
		t.Fatalf("Load = found %v, %v", found, err)
	}
	if diff := cmp.Diff(cur, got); diff != "" {
		t.Errorf("cursor (-want +got):\n%s", diff)
	}
	if len(partials) != 1 {
		t.Fatalf("%d partials, want 1 (the 9:42 one was never written)", len(partials))
	}
	gotHd, err := window.ParseHeader(partials[0])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hd, gotHd); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	store.Fail = errors.New("boom")
	if _, _, _, err := window.Load(ctx, store, "r", keys, "s1"); err == nil {
		t.Error("Load ignored a store error")
	}
}
