package traffic_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestIoTGenerator(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := traffic.IoTConfig{Seed: 3, Start: start, Sensors: []string{"DemoSensor", "Other"}}
	g, err := traffic.NewIoT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g2, _ := traffic.NewIoT(cfg)
	d, err := records.NewJSONDecoder(records.JSONFields{Time: "ts", Key: "iotName", Values: []string{"iotValue"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	var ev, ev2 traffic.Event
	anomalies := 0
	var r records.Record
	for i := range n {
		g.Next(&ev)
		g2.Next(&ev2)
		if !bytes.Equal(ev.Payload, ev2.Payload) {
			t.Fatalf("same seed, different payloads %q %q", ev.Payload, ev2.Payload)
		}
		if err := d.Decode(ev.Payload, &r); err != nil {
			t.Fatalf("%q: %v", ev.Payload, err)
		}
		v := r.Values[0]
		if ev.Anomaly {
			anomalies++
			if v < 100 || v > 120 {
				t.Fatalf("anomaly %v", v)
			}
		} else if v < 10 || v > 20 {
			t.Fatalf("normal %v", v)
		}
		if r.Key != ev.Key || !r.Time.Equal(ev.Time.Truncate(time.Millisecond)) {
			t.Fatalf("decoded %+v from event %+v", r, ev)
		}
		if i == 0 && !bytes.HasPrefix(ev.Payload, []byte(`{"iotName":"`)) {
			t.Fatalf("payload %s", ev.Payload)
		}
	}
	if share := float64(anomalies) / n; share < 0.008 || share > 0.012 {
		t.Errorf("anomaly share %v, want about 0.01", share)
	}
	if _, err := traffic.NewIoT(traffic.IoTConfig{Start: start, AnomalyShare: 2}); err == nil {
		t.Error("anomaly share 2 accepted")
	}
}

func TestSpike(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := traffic.Config{Seed: 1, Start: start, Rate: 200, Hosts: []string{"a", "b"},
		SpikeHost: "b", SpikeAt: 60 * time.Second, SpikeFor: 30 * time.Second, SpikeFactor: 10}
	g, err := traffic.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	perSec := map[int]map[string]int{}
	var ev traffic.Event
	var r records.Record
	d := &records.ClickstreamDecoder{}
	for {
		g.Next(&ev)
		if ev.Offset >= 120*time.Second {
			break
		}
		if ev.Kind != traffic.KindHit {
			continue
		}
		if err := d.Decode(ev.Payload, &r); err != nil {
			t.Fatal(err)
		}
		s := int(ev.Offset / time.Second)
		if perSec[s] == nil {
			perSec[s] = map[string]int{}
		}
		perSec[s][r.Host]++
		inSpike := ev.Offset >= cfg.SpikeAt && ev.Offset < cfg.SpikeAt+cfg.SpikeFor
		if ev.Anomaly && (!inSpike || r.Host != "b") {
			t.Fatalf("spike hit outside the spike: %v %s", ev.Offset, r.Host)
		}
	}
	sum := func(from, to int, host string) float64 {
		n := 0
		for s := from; s < to; s++ {
			n += perSec[s][host]
		}
		return float64(n) / float64(to-from)
	}
	before, during, after := sum(0, 60, "b"), sum(60, 90, "b"), sum(90, 120, "b")
	other := sum(60, 90, "a") / sum(0, 60, "a")
	t.Logf("host b hits/s: %.0f before, %.0f during, %.0f after; host a during/before %.2f", before, during, after, other)
	if ratio := during / before; ratio < 8 || ratio > 12 || after > 1.5*before || other > 1.3 {
		t.Errorf("spike ratio %.2f (want about 10), after %.0f, other host %.2f", ratio, after, other)
	}
	cfg.SpikeFactor = 1
	if _, err := traffic.New(cfg); err == nil {
		t.Error("spike factor 1 accepted")
	}
}
