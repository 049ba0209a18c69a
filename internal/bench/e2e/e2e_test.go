package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/processors/builtin"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSummarize(t *testing.T) {
	var ms []float64
	for i := 100; i >= 1; i-- {
		ms = append(ms, float64(i))
	}
	got := Summarize(ms)
	want := Percentiles{N: 100, P50: 50, P90: 90, P99: 99, Max: 100}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Percentiles{N: 1, P50: 7, P90: 7, P99: 7, Max: 7}, Summarize([]float64{7})); diff != "" {
		t.Errorf("one sample (-want +got):\n%s", diff)
	}
	if (Summarize(nil) != Percentiles{}) {
		t.Error("empty sample not zero")
	}
}

// TestTailer follows an audit log written in pieces (a line split across
// two writes included) and joins it with the put times.
func TestTailer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tl := newTailer(8)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tl.follow(ctx, []string{path}) }()
	defer func() { cancel(); <-done }()

	p := &producer{puts: map[uint64]int64{}}
	put := time.Now().Add(-time.Second).UnixNano()
	keys := []uint64{posKey("shardId-000000000001", "100"), posKey("shardId-000000000002", "100"), posKey("shardId-000000000001", "101")}
	for _, k := range keys {
		p.puts[k] = put
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []string{
		"shardId-000000000001 100 0 w1\nshardId-000000000002 1",
		"00 0 w1\n",
		"shardId-000000000001 100 0 w2\n", // a duplicate (replayed by another worker)
	} {
		if _, err := io.WriteString(f, chunk); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, tl, keys[:2], 2)
	if tl.duplicates() != 1 {
		t.Errorf("duplicates = %d, want 1", tl.duplicates())
	}
	if n, _ := tl.count(keys); n != 2 {
		t.Errorf("seen %d of 3, want 2 (the third was never written)", n)
	}
	lat := tl.latencies(p, keys)
	if len(lat) != 2 || lat[0] < 1000 || lat[0] > 60_000 {
		t.Errorf("latencies %v ms: want two of about 1000", lat)
	}
}

func waitCount(t *testing.T, tl *tailer, keys []uint64, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _ := tl.count(keys)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tailer saw %d of %d lines", n, want)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
}

func TestAlarmMatch(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	a := alarmWatch{received: []time.Time{at(6400), at(300), at(12_100), at(19_000)}}
	bursts := []time.Time{at(0), at(6000), at(12_000), at(18_000), at(24_000)}
	lat, missed, extra := a.match(bursts)
	if diff := cmp.Diff([]float64{300, 400, 100, 1000}, lat); diff != "" {
		t.Errorf("latencies (-want +got):\n%s", diff)
	}
	if missed != 1 || extra != 0 {
		t.Errorf("missed %d extra %d, want 1 and 0", missed, extra)
	}
}

func TestReadProc(t *testing.T) {
	st := readProc(os.Getpid())
	if !st.Available || st.RSS <= 0 || st.HWM < st.RSS {
		t.Fatalf("readProc(self) = %+v", st)
	}
	if readProc(-1).Available {
		t.Error("readProc of no process is available")
	}
}

// TestConsumerConfig: the YAML the harness writes loads with the
// consumer's strict config loader (unknown keys are errors there), with
// every built-in processor.
func TestConsumerConfig(t *testing.T) {
	var plugins []string
	for _, p := range builtin.Plugins() {
		plugins = append(plugins, p.Name)
	}
	cfg := Defaults()
	r := &resources{stream: "s", app: "a", topicARN: "arn:aws:sns:us-east-1:000000000000:a-alarms"}
	y, err := consumerConfig(cfg, r, "w1", "/tmp/audit", "127.0.0.1:0", "/tmp/m.emf", 4, plugins)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, y, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load([]string{"--config", path}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatalf("config does not load: %v\n%s", err, y)
	}
	var names []string
	for _, p := range c.ProcessorList() {
		names = append(names, p.Name)
	}
	if len(names) != len(plugins) || !c.Pprof || c.MaxLeases != 4 || c.PollInterval != 250*time.Millisecond {
		t.Errorf("loaded %+v with processors %v", c, names)
	}
	if !strings.Contains(string(y), "suppression: 5s") {
		t.Errorf("orderflood not tuned for bursts:\n%s", y)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Defaults()
	ok.ConsumerBin, ok.BaselineBin, ok.DataDir, ok.OutDir = "c", "b", "d", "o"
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"no binary":       func(c *Config) { c.ConsumerBin = "" },
		"few records":     func(c *Config) { c.Records = 10 },
		"fleet too big":   func(c *Config) { c.Workers = []int{9} },
		"burst too small": func(c *Config) { c.BurstOrders = c.AlarmThreshold },
		"bursts too near": func(c *Config) { c.BurstEvery = time.Second },
		"long profile":    func(c *Config) { c.ProfileSeconds = 60 },
	} {
		c := ok
		c.Workers = append([]int(nil), ok.Workers...)
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

// TestPayloads: the shared data turns into hits and orders whose put time
// lands where the decoders read it.
func TestPayloads(t *testing.T) {
	pl, err := loadPayloads(testenv.SharedDataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.hits) < 9000 || len(pl.orders) < 30000 {
		t.Fatalf("%d hits, %d orders", len(pl.hits), len(pl.orders))
	}
	now := time.Date(2026, 11, 22, 9, 41, 7, 123e6, time.UTC)
	hit := string(pl.hits[0].render(nil, now))
	order := string(pl.orders[0].render(nil, now))
	if !strings.Contains(hit, `"timestamp":"2026-11-22T09:41:07.123Z"`) || !strings.Contains(order, `"invoice_date":"2026-11-22 09:41:07"`) {
		t.Errorf("rendered:\n%s\n%s", hit, order)
	}
	dec, _ := records.NewDecoder(records.FormatAuto) // the consumer's format in the runs
	for _, tc := range []struct {
		payload string
		kind    records.Kind
		time    time.Time
	}{{hit, records.KindHit, now}, {order, records.KindOrder, now.Truncate(time.Second)}} {
		var r records.Record
		if err := dec.Decode([]byte(tc.payload), &r); err != nil || r.Kind != tc.kind || !r.Time.Equal(tc.time) {
			t.Errorf("decode %s: kind %v time %v err %v; want %v at %v", tc.payload, r.Kind, r.Time, err, tc.kind, tc.time)
		}
	}
}
