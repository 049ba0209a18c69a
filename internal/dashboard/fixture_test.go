package dashboard_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/builtin"
	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/sinks/dynamo"
)

// t0 is the fixture's first event time: a fixed instant, so every bucket
// and window key below is known in advance.
var t0 = time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// talker is one client IP of the fixture: hits count, bytes per hit, the
// shard that holds it, its host and whether it is a crawler.
type talker struct {
	ip     string
	hits   int
	bytes  int64
	shard  int
	host   string
	bot    bool
	offset time.Duration // first hit's offset from t0
	step   time.Duration // between its hits; 0 = spread over t0..t0+10s
}

// The fixture's traffic: the first five talkers send 55 hits in the 10 s
// window starting at the base time (s+1 hits in its second s, see
// firstWindowHits); the last one sends one hit a second at base+40s..44s.
var talkers = []talker{
	{ip: "198.51.100.1", hits: 15, bytes: 100, shard: 0, host: "www.example.com"},
	{ip: "198.51.100.2", hits: 13, bytes: 200, shard: 1, host: "www.example.com"},
	{ip: "198.51.100.3", hits: 11, bytes: 300, shard: 0, host: "www.example.com"},
	{ip: "198.51.100.4", hits: 9, bytes: 400, shard: 1, host: "img.example.com"},
	{ip: "198.51.100.5", hits: 7, bytes: 500, shard: 0, host: "img.example.com", bot: true},
	{ip: "203.0.113.9", hits: 5, bytes: 1000, shard: 1, host: "api.example.com", offset: 40 * time.Second, step: time.Second},
}

// firstWindowHits returns the first window's 55 hits: s+1 in second s
// after base, assigned round-robin over the first five talkers.
func firstWindowHits(base time.Time) []traffic.Hit {
	left := make([]int, 5)
	for i := range left {
		left[i] = talkers[i].hits
	}
	var out []traffic.Hit
	k := 0
	for s := range 10 {
		for range s + 1 {
			for left[k%5] == 0 {
				k++
			}
			tk := talkers[k%5]
			left[k%5]--
			k++
			out = append(out, hitOf(tk, base.Add(time.Duration(s)*time.Second+time.Duration(len(out))*time.Millisecond), len(out)))
		}
	}
	return out
}

func hitOf(tk talker, at time.Time, i int) traffic.Hit {
	ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
	if tk.bot {
		ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	}
	return traffic.Hit{
		IP: tk.ip, UserAgent: ua, Referer: "https://www.example.com/", SessionID: "s-" + tk.ip,
		Time: at, Path: fmt.Sprintf("/p/%d", i), Status: 200, Bytes: tk.bytes, Host: tk.host, Method: "GET", Event: "pageview",
	}
}

// fixtureRecords returns each shard's payloads in event-time order, the
// first window starting at base; late adds the last talker's hits.
func fixtureRecords(base time.Time, late bool) [2][][]byte {
	var out [2][][]byte
	shardOf := map[string]int{}
	for _, tk := range talkers {
		shardOf[tk.ip] = tk.shard
	}
	first := firstWindowHits(base)
	// Orders: six invoices at base+2s on shard 0 (orderflood threshold 5).
	for i, h := range first {
		if i == 3 {
			for j := range 6 {
				o := traffic.Order{InvoiceNo: fmt.Sprintf("5%05d", j), StockCode: "85123A", Description: "LANTERN",
					Quantity: 1, Time: base.Add(2 * time.Second), UnitPrice: 2.55, CustomerID: fmt.Sprintf("1%04d", j), Country: "France"}
				out[0] = append(out[0], o.AppendJSON(nil))
			}
		}
		out[shardOf[h.IP]] = append(out[shardOf[h.IP]], h.AppendJSON(nil))
	}
	if !late {
		return out
	}
	tk := talkers[5]
	for i := range tk.hits {
		h := hitOf(tk, base.Add(tk.offset+time.Duration(i)*tk.step), 1000+i)
		out[tk.shard] = append(out[tk.shard], h.AppendJSON(nil))
	}
	return out
}

// processorConfig is what the fixture and the browser test's worker run:
// short windows so results appear within seconds.
const processorConfig = `
counters: {seconds: true, grace: 1s, idle: 2s, update_interval: 1s}
topn: {n: 10, window: 10s, grace: 1s, idle: 2s}
botdetect: {window: 10s, grace: 1s, idle: 2s}
orderflood: {threshold: 5, window: 15s, grace: 1s, idle: 2s}
histogram: {window: 10s, grace: 1s, idle: 2s}
visitors: {window: 10s, grace: 1s, idle: 2s}
`

// writeFixture creates APP-counters, APP-results and APP-alarms in
// DynamoDB Local and fills them by running the real processors over the
// fixture traffic on two shards, through the real DynamoDB sinks, until
// every window is final. It returns the app name.
func writeFixture(t *testing.T) string {
	t.Helper()
	app := testenv.Name(t, "dash")
	tables := processors.TablesFor(app)
	testenv.CreateTable(t, tables.Counters, "event", "bucket")
	testenv.CreateTable(t, tables.Results, "pk", "sk")
	testenv.CreateTable(t, tables.Alarms, "alarm", "period")
	ddb := testenv.DynamoDB(t)
	items, err := dynamo.NewItemWriter(ddb, dynamo.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := dynamo.NewStore(ddb, dynamo.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info := processors.AppInfo{App: app, Stream: "web", Tables: tables}
	reg, err := processors.NewRegistry(builtin.Plugins()...)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(processorConfig), &doc); err != nil {
		t.Fatal(err)
	}
	var named []processors.Named
	m := doc.Content[0]
	for i := 0; i < len(m.Content); i += 2 {
		f, err := reg.Build(m.Content[i].Value, m.Content[i+1], info)
		if err != nil {
			t.Fatal(err)
		}
		named = append(named, processors.Named{Name: m.Content[i].Value, Factory: f})
	}
	clk := &clock{now: t0.Add(45 * time.Second)}
	cfg := processors.Config{
		Stream: "web", Processors: named,
		NewDecoder: func() (processors.Decoder, error) { return records.NewDecoder(records.FormatAuto) },
		Sinks:      processors.Sinks{Items: items}, Store: store, Clock: clk,
	}
	ctx := t.Context()
	recs := fixtureRecords(t0, true)
	var pipes [2]*processors.ShardPipeline
	for s := range pipes {
		id := fmt.Sprintf("shardId-%012d", s)
		if pipes[s], err = processors.Open(ctx, cfg, processors.Shard{Stream: "web", ShardID: id, WorkerID: "fixture"}); err != nil {
			t.Fatal(err)
		}
		batch := make([]processors.Raw, len(recs[s]))
		for i, data := range recs[s] {
			batch[i] = processors.Raw{Data: data, Meta: records.Meta{ShardID: id,
				SequenceNumber: fmt.Sprintf("4960%052d", i+1), PartitionKey: "k", ArrivalTime: clk.Now()}}
		}
		if err := pipes[s].Process(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// Idle flushes close every window; the shards then end, so the last
	// one to close merges every final partial.
	clk.Set(t0.Add(5 * time.Minute))
	for _, p := range pipes {
		if err := p.Tick(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pipes {
		if err := p.Close(ctx, processors.ShardEnded); err != nil {
			t.Fatal(err)
		}
	}
	return app
}
