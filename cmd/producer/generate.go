package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/shardwatch/shardwatch/internal/putter"
	"github.com/shardwatch/shardwatch/internal/traffic"
)

const generateUsage = `usage: producer generate [flags]

Sends synthetic clickstream hits (JSON, format clickstream) and orders (JSON,
format orders-json) at --rate records/s (Poisson arrivals) until --count
records or --duration passed, or until interrupted. --bot-share of the hits
come from real crawler User-Agents that fetch /robots.txt and crawl many
paths without a referer. --flood-every adds bursts of --flood-size orders
within --flood-spread, enough for the consumer's order-flood alarm.
--malformed-share of the records are cut in half, so no decoder accepts them
(for dead-letter tests and demos). --speedup N sends N event-time seconds per
wall-clock second (windows close N times sooner). The same --seed gives the
same payloads; timestamps follow the clock unless --start-time fixes them too.

--spike-host H adds a traffic spike: from --spike-at for --spike-for, host H
gets --spike-factor times its normal hit rate (for anomaly-detection demos).

--anomalies sends the IoT example of the Kinesis Data Analytics
RANDOM_CUT_FOREST function instead: {"iotName":"DemoSensor","iotValue":14,
"ts":"..."} (format json with time ts, key iotName, value iotValue), values
10-20 and --anomaly-share of them in 100-120, one series per --sensors name,
partitioned by sensor name.

flags:
`

type generateFlags struct {
	common
	rate        float64
	duration    time.Duration
	count       int64
	botShare    float64
	orderShare  float64
	floodEvery  time.Duration
	floodSize   int
	floodSpread time.Duration
	seed        uint64
	startTime   string
	hosts       string
	malformed   float64
	speedup     float64

	spikeHost   string
	spikeAt     time.Duration
	spikeFor    time.Duration
	spikeFactor float64

	anomalies    bool
	anomalyShare float64
	sensors      string
}

func runGenerate(ctx context.Context, args []string, e env) error {
	var f generateFlags
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, generateUsage); fs.PrintDefaults() }
	f.register(fs, e.getenv)
	fs.Float64Var(&f.rate, "rate", 100, "records per second")
	fs.DurationVar(&f.duration, "duration", 0, "stop after this long (0 = no limit)")
	fs.Int64Var(&f.count, "count", 0, "stop after this many records (0 = no limit)")
	fs.Float64Var(&f.botShare, "bot-share", 0.2, "share of hits from crawlers")
	fs.Float64Var(&f.orderShare, "order-share", 0.02, "share of records that are orders")
	fs.DurationVar(&f.floodEvery, "flood-every", 0, "start an order flood this often (0 = never)")
	fs.IntVar(&f.floodSize, "flood-size", 40, "orders per flood")
	fs.DurationVar(&f.floodSpread, "flood-spread", 3*time.Second, "how long one flood lasts")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed: the same seed gives the same payloads")
	fs.StringVar(&f.startTime, "start-time", "", "RFC 3339 timestamp of the first record (default: now), for reproducible payloads")
	fs.StringVar(&f.hosts, "hosts", "shop.example.com,blog.example.com", "comma-separated virtual hosts of the hits")
	fs.Float64Var(&f.malformed, "malformed-share", 0, "share of records sent malformed (cut in half)")
	fs.Float64Var(&f.speedup, "speedup", 1, "event-time seconds sent per wall-clock second")
	fs.StringVar(&f.spikeHost, "spike-host", "", "host that gets a traffic spike (default: no spike)")
	fs.DurationVar(&f.spikeAt, "spike-at", time.Minute, "when the spike starts, from the first record")
	fs.DurationVar(&f.spikeFor, "spike-for", 30*time.Second, "how long the spike lasts")
	fs.Float64Var(&f.spikeFactor, "spike-factor", 10, "the spiking host's hit rate during the spike, times normal")
	fs.BoolVar(&f.anomalies, "anomalies", false, "send the IoT anomaly example (JSON sensor readings) instead of clickstream and orders")
	fs.Float64Var(&f.anomalyShare, "anomaly-share", 0.01, "with --anomalies: share of readings in the anomalous range 100-120")
	fs.StringVar(&f.sensors, "sensors", "DemoSensor", "with --anomalies: comma-separated sensor names (iotName)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("generate: unexpected arguments %q", fs.Args())
	}
	if err := f.validate(); err != nil {
		return err
	}
	if f.rate <= 0 || f.duration < 0 || f.count < 0 {
		return errors.New("--rate must be positive, --duration and --count not negative")
	}
	if f.malformed < 0 || f.malformed > 1 || f.speedup <= 0 {
		return errors.New("--malformed-share must be between 0 and 1, --speedup positive")
	}
	wallStart := e.now()
	start := wallStart
	if f.startTime != "" {
		t, err := time.Parse(time.RFC3339Nano, f.startTime)
		if err != nil {
			return fmt.Errorf("--start-time: %w", err)
		}
		start = t
	}
	gen, err := f.generator(start)
	if err != nil {
		return err
	}

	p, err := startPipeline(ctx, &f.common, e, "generate")
	if err != nil {
		return err
	}
	// Random partition keys come from the seed too, so a seeded run puts
	// the same records on the same shards.
	keyRand := rand.New(rand.NewPCG(f.seed, 0x6b6579)).Uint64
	badRand := rand.New(rand.NewPCG(f.seed, 0x626164))
	var ev traffic.Event
	var srcErr error
	for n := int64(0); f.count == 0 || n < f.count; n++ {
		ev.Payload = nil // each record keeps its own payload
		gen.Next(&ev)
		if f.duration > 0 && ev.Offset >= f.duration {
			break
		}
		if f.malformed > 0 && badRand.Float64() < f.malformed {
			ev.Payload = ev.Payload[:len(ev.Payload)/2]
		}
		if w := wallStart.Add(time.Duration(float64(ev.Offset) / f.speedup)).Sub(e.now()); w > 0 {
			if srcErr = e.sleep(ctx, w); srcErr != nil {
				break
			}
		}
		key := ev.Key // an IoT sensor: one shard per series
		if key == "" {
			key = f.keyMode.Key(ev.Keys, keyRand)
		}
		if srcErr = p.prod.Add(ctx, putter.Entry{PartitionKey: key, Data: ev.Payload}); srcErr != nil {
			break
		}
	}
	if err := p.finish(ctx, "generate"); err != nil {
		return err
	}
	if srcErr != nil && !errors.Is(srcErr, context.Canceled) {
		return srcErr
	}
	return nil
}

// eventSource is the traffic.Generator or traffic.IoTGenerator.
type eventSource interface{ Next(*traffic.Event) }

// generator builds the event source the flags ask for.
func (f *generateFlags) generator(start time.Time) (eventSource, error) {
	if f.anomalies {
		if f.spikeHost != "" {
			return nil, errors.New("--spike-host applies to clickstream traffic, not --anomalies")
		}
		if !(f.anomalyShare > 0 && f.anomalyShare <= 1) {
			return nil, errors.New("--anomaly-share must be in (0, 1]")
		}
		return traffic.NewIoT(traffic.IoTConfig{
			Seed: f.seed, Start: start, Rate: f.rate,
			Sensors: splitList(f.sensors), AnomalyShare: f.anomalyShare,
		})
	}
	cfg := traffic.Config{
		Seed: f.seed, Start: start, Rate: f.rate,
		BotShare: f.botShare, NoBots: f.botShare == 0,
		OrderShare: f.orderShare, NoOrders: f.orderShare == 0,
		FloodEvery: f.floodEvery, FloodSize: f.floodSize, FloodSpread: f.floodSpread,
		Hosts: splitList(f.hosts),
	}
	if f.spikeHost != "" {
		cfg.SpikeHost, cfg.SpikeAt, cfg.SpikeFor, cfg.SpikeFactor = f.spikeHost, f.spikeAt, f.spikeFor, f.spikeFactor
	}
	return traffic.New(cfg)
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
