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
	var hosts []string
	for _, h := range strings.Split(f.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	gen, err := traffic.New(traffic.Config{
		Seed: f.seed, Start: start, Rate: f.rate,
		BotShare: f.botShare, NoBots: f.botShare == 0,
		OrderShare: f.orderShare, NoOrders: f.orderShare == 0,
		FloodEvery: f.floodEvery, FloodSize: f.floodSize, FloodSpread: f.floodSpread,
		Hosts: hosts,
	})
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
		if srcErr = p.prod.Add(ctx, putter.Entry{PartitionKey: f.keyMode.Key(ev.Keys, keyRand), Data: ev.Payload}); srcErr != nil {
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
