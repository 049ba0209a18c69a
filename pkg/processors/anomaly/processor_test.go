package anomaly_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/anomaly"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

var t0 = time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)

func build(tb testing.TB, settings string) processors.Factory {
	tb.Helper()
	reg, err := processors.NewRegistry(anomaly.Plugin())
	if err != nil {
		tb.Fatal(err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(settings), &node); err != nil {
		tb.Fatal(err)
	}
	f, err := reg.Build(anomaly.Name, &node, processors.AppInfo{App: "demo", Stream: "web", Tables: processors.TablesFor("demo"), AlarmTopicARN: "arn:topic"})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// iot returns n seeded readings of the KDA IoT example, decoded by the
// json format, as one shard.
func iot(tb testing.TB, n int, rate float64) ([]records.Record, []bool) {
	tb.Helper()
	g, err := traffic.NewIoT(traffic.IoTConfig{Seed: 20, Start: t0, Rate: rate, Sensors: []string{"DemoSensor", "Boiler", "Pump", "Fan"}})
	if err != nil {
		tb.Fatal(err)
	}
	dec, err := records.NewJSONDecoder(records.JSONFields{Time: "ts", Key: "iotName", Values: []string{"iotValue"}})
	if err != nil {
		tb.Fatal(err)
	}
	recs := make([]records.Record, n)
	anomalous := make([]bool, n)
	var ev traffic.Event
	for i := range recs {
		g.Next(&ev)
		if err := dec.Decode(ev.Payload, &recs[i]); err != nil {
			tb.Fatal(err)
		}
		anomalous[i] = ev.Anomaly
	}
	return processortest.Sequence("shardId-000000000001", recs), anomalous
}

// hits is ten minutes of hits on three hosts, a few seconds out of order.
func hits() []records.Record {
	statuses := []int{200, 200, 304, 404, 200, 500, 301, 200, 0, 999}
	uas := []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", "Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.0"}
	hosts := []string{"a.example", "b.example", "", "a.example"}
	recs := make([]records.Record, 3000)
	for i := range recs {
		recs[i] = records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(i)*200*time.Millisecond - time.Duration(i%3)*time.Second),
			Status: statuses[i%len(statuses)], Host: hosts[i%len(hosts)], UserAgent: uas[i%len(uas)], Bytes: int64(i % 5000)}
	}
	return processortest.Sequence("shardId-000000000001", recs)
}

// small is a forest small enough for the kit's many runs, snapshotted on
// every flush so a new owner continues exactly (see README, Failover).
const small = "forest: {trees: 10, sample_size: 32}\nsnapshot_interval: 0s\nmax_keys: 20\n"

func TestConformanceJSON(t *testing.T) {
	recs, _ := iot(t, 3000, 20)
	processortest.Run(t, processortest.Suite{
		Factory: build(t, small+"threshold: 2.5\n"), Records: recs,
		Window: window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second},
		Flood: func(i int) records.Record {
			r := records.Record{Kind: records.KindEvent, Time: t0.Add(time.Duration(i) * time.Millisecond), Key: fmt.Sprintf("k%d", i), NumValues: 1}
			r.Values[0] = float64(i % 17)
			return r
		},
		FloodSize: 20_000, MaxStateKeys: 20 + 10*61,
	})
}

func TestConformanceTraffic(t *testing.T) {
	processortest.Run(t, processortest.Suite{
		Factory: build(t, small+"input: traffic\n"), Records: hits(),
		Window: window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second},
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(i) * time.Millisecond), Host: fmt.Sprintf("h%d.example", i), Status: 200}
		},
		FloodSize: 20_000, MaxStateKeys: 20 + 20*3 + 10*61,
	})
}

func TestConfigErrors(t *testing.T) {
	reg, err := processors.NewRegistry(anomaly.Plugin())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"input: xml", "processors.anomaly.input: must be json or traffic"},
		{"threshold: 0", "processors.anomaly.threshold: must be > 0"},
		{"max_keys: 0", "processors.anomaly.max_keys: must be between 1 and 1000"},
		{"top: 1000", "processors.anomaly.top: must be between 1 and 100"},
		{"buckets: [2, 1]", "processors.anomaly.buckets[1]: bounds must be finite and ascending"},
		{"forest: {trees: 5000}", "processors.anomaly.forest: rcf: config"},
		{"input: traffic\nseries: [requests, hits]", "processors.anomaly.series[1]: must be one of"},
		{"series: [requests]", "processors.anomaly.series: only with input traffic"},
		{"values: 9", "processors.anomaly.values: must be between 1 and 4"},
		{"suppression: 7s", "processors.anomaly.suppression: must be whole seconds >= 1s dividing 24h"},
		{"treshold: 3", "treshold"},
	} {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(tc.yaml), &node); err != nil {
			t.Fatal(err)
		}
		_, err := reg.Build(anomaly.Name, &node, processors.AppInfo{App: "demo", Tables: processors.TablesFor("demo")})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
