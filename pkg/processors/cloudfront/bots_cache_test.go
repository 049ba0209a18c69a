package cloudfront_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/botdetect"
	"github.com/shardwatch/shardwatch/pkg/processors/cloudfront"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestBotsAndCacheConfig(t *testing.T) {
	for _, tt := range []struct {
		plugin   func() processors.Plugin
		in, want string
	}{
		{cloudfront.BotsPlugin, "", ""},
		{cloudfront.BotsPlugin, "max_rows: 5000\n", "processors.cloudfront-bots.max_rows: must be between 1 and 1104 (item size)"},
		{cloudfront.BotsPlugin, "user_agents: {cache_size: 0}\n", "processors.cloudfront-bots.user_agents.cache_size: must be between 1 and 10000000"},
		{cloudfront.BotsPlugin, "user_agents: {deny: ['re:(']}\n", "processors.cloudfront-bots.user_agents.deny[0]: bad regexp: error parsing regexp: missing closing ): `(`"},
		{cloudfront.CachePlugin, "max_distributions: 0\n", "processors.cloudfront-cache.max_distributions: must be between 1 and 764 (item size)"},
		{cloudfront.CachePlugin, "window: 5m\nmax_distribution: 3\n", "processors.cloudfront-cache.max_distribution: unknown field (line 2)"},
	} {
		if got := configError(t, tt.plugin(), tt.in); got != tt.want {
			t.Errorf("%s config %q: error %q, want %q", tt.plugin().Name, tt.in, got, tt.want)
		}
	}
}

// botsOffline counts bot requests per (IP, edge, distribution) and
// window of the CloudFront records in recs, with botdetect's detector.
func botsOffline(t *testing.T, recs []records.Record) map[time.Time]map[cloudfront.BotKey]cloudfront.Sum {
	d, err := botdetect.NewDetector(botdetect.UAConfig{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[time.Time]map[cloudfront.BotKey]cloudfront.Sum{}
	for _, r := range recs {
		if r.Edge == "" {
			continue
		}
		if bot, _ := d.IsBot(r.UserAgent); !bot {
			continue
		}
		w := r.Time.Truncate(time.Minute)
		if out[w] == nil {
			out[w] = map[cloudfront.BotKey]cloudfront.Sum{}
		}
		k := cloudfront.BotKey{ClientIP: r.ClientIP, Edge: r.Edge, Distribution: r.Host}
		s := out[w][k]
		s.Bytes += r.Bytes
		s.Requests++
		out[w][k] = s
	}
	return out
}

func TestBotsGlobal(t *testing.T) {
	for name, recs := range map[string]func(testing.TB) []records.Record{
		"sample":    sampleLog,
		"synthetic": func(testing.TB) []records.Record { return traffic() },
	} {
		t.Run(name, func(t *testing.T) {
			all := recs(t)
			want := botsOffline(t, all)
			got := map[time.Time]map[cloudfront.BotKey]cloudfront.Sum{}
			store := runShards(t, build(t, cloudfront.BotsPlugin(), "grace: 2m\n"), all, 3)
			bots := 0
			for _, it := range globals(t, store, cloudfront.BotsName, 3) {
				b, err := cloudfront.ParseBots(it, cloudfront.DefaultBotsConfig())
				if err != nil {
					t.Fatal(err)
				}
				m := map[cloudfront.BotKey]cloudfront.Sum{}
				var sum cloudfront.Sum
				for k, r := range b.Rows {
					m[k] = r.Sum
					sum.Bytes += r.Bytes
					sum.Requests += r.Requests
					if r.Bot == "" {
						t.Errorf("%v: no crawler name", k)
					}
				}
				if sum != b.Bot || b.Other != (cloudfront.Sum{}) {
					t.Errorf("rows sum %v, bot total %v, other %v", sum, b.Bot, b.Other)
				}
				bots += int(sum.Requests)
				if len(m) > 0 {
					got[windowStart(t, it)] = m
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("bot requests per IP, edge and distribution (-offline +processor):\n%s", diff)
			}
			if bots == 0 {
				t.Error("no bot requests found")
			}
		})
	}
}

func TestCacheGlobal(t *testing.T) {
	all := traffic()
	want := map[time.Time]map[string]cloudfront.CacheRow{}
	for _, r := range all {
		if r.Edge == "" {
			continue
		}
		w := r.Time.Truncate(time.Minute)
		if want[w] == nil {
			want[w] = map[string]cloudfront.CacheRow{}
		}
		row := want[w][r.Host]
		row.Classes[cloudfront.Class(r.EdgeResult)]++
		row.TimeTaken += r.TimeTaken
		row.Timed++
		want[w][r.Host] = row
	}
	store := runShards(t, build(t, cloudfront.CachePlugin(), "grace: 2m\n"), all, 3)
	got := map[time.Time]map[string]cloudfront.CacheRow{}
	for _, it := range globals(t, store, cloudfront.CacheName, 3) {
		rows, err := cloudfront.ParseCache(it, cloudfront.DefaultCacheConfig())
		if err != nil {
			t.Fatal(err)
		}
		got[windowStart(t, it)] = rows
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cache rows (-offline +processor):\n%s", diff)
	}
	r := want[trafficT][dists[0]]
	if r.HitRatio() <= 0 || r.HitRatio() >= 1 || r.MeanTimeTaken() <= 0 {
		t.Errorf("hit ratio %g, mean time taken %s", r.HitRatio(), r.MeanTimeTaken())
	}
}

func TestClass(t *testing.T) {
	for in, want := range map[string]int{
		"Hit": cloudfront.ClassHit, "OriginShieldHit": cloudfront.ClassHit, "RefreshHit": cloudfront.ClassRefreshHit,
		"Miss": cloudfront.ClassMiss, "Error": cloudfront.ClassError, "LimitExceeded": cloudfront.ClassError,
		"CapacityExceeded": cloudfront.ClassError, "LambdaExecutionError": cloudfront.ClassError,
		"Redirect": cloudfront.ClassOther, "LambdaGeneratedResponse": cloudfront.ClassOther, "": cloudfront.ClassOther,
	} {
		if got := cloudfront.Class(in); got != want {
			t.Errorf("Class(%q) = %d, want %d", in, got, want)
		}
	}
	r := cloudfront.CacheRow{Classes: [cloudfront.NumClasses]int64{6, 2, 2, 5, 9}, TimeTaken: 3 * time.Second, Timed: 4}
	if r.HitRatio() != 0.8 || r.MeanTimeTaken() != 750*time.Millisecond || r.Requests() != 24 {
		t.Errorf("HitRatio %g, MeanTimeTaken %s, Requests %d", r.HitRatio(), r.MeanTimeTaken(), r.Requests())
	}
}

func TestBotsConformance(t *testing.T) {
	processortest.Run(t, processortest.Suite{
		Factory: build(t, cloudfront.BotsPlugin(), "max_rows: 300\n"),
		Records: traffic(),
		Window:  windowed.DefaultWindow(),
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: trafficT, Bytes: int64(i), UserAgent: agents[1],
				ClientIP: fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), Host: dists[0], Edge: edges[i%len(edges)]}
		},
		FloodSize:    20_000,
		MaxStateKeys: 300,
		ExactMetrics: true,
	})
}

func TestCacheConformance(t *testing.T) {
	processortest.Run(t, processortest.Suite{
		Factory: build(t, cloudfront.CachePlugin(), "max_distributions: 100\n"),
		Records: traffic(),
		Window:  windowed.DefaultWindow(),
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: trafficT, Host: fmt.Sprintf("d%d.cloudfront.net", i), Edge: "FRA53", EdgeResult: "Miss"}
		},
		FloodSize:    20_000,
		MaxStateKeys: 100,
		ExactMetrics: true,
	})
}

// TestItemSizeBound fills every plugin to its largest settings with the
// longest stored values and numbers and checks every item stays below
// DynamoDB's 400 KB.
func TestItemSizeBound(t *testing.T) {
	long := func(prefix string, i, n int) string {
		s := fmt.Sprintf("%s%d-", prefix, i)
		for len(s) < n {
			s += "x"
		}
		return s
	}
	for _, tt := range []struct {
		plugin processors.Plugin
		conf   string
		rows   int
	}{
		{cloudfront.BytesPlugin(), "max_rows: 1645\n", 1645},
		{cloudfront.BotsPlugin(), "max_rows: 1104\nuser_agents: {deny: [x]}\n", 1104},
		{cloudfront.CachePlugin(), "max_distributions: 764\n", 764},
	} {
		recs := make([]records.Record, 0, 3*tt.rows)
		for i := range 3 * tt.rows {
			recs = append(recs, records.Record{Kind: records.KindHit, Time: trafficT.Add(time.Duration(i%60) * time.Second),
				Bytes: 1 << 62, ClientIP: "2001:0db8:85a3:0000:0000:8a2e:0370:" + fmt.Sprintf("%04x", i), Host: long("d", i, 300),
				Edge: long("E", i, 50), UserAgent: long("x-bot", i, 100), EdgeResult: results[i%len(results)], TimeTaken: time.Hour})
		}
		processortest.Sequence("shardId-000000000001", recs)
		store := runShards(t, build(t, tt.plugin, tt.conf), recs, 2)
		biggest := 0
		for _, it := range store.Items(app.Tables.Results) {
			biggest = max(biggest, processortest.ItemSize(it))
		}
		if biggest > 400_000 || biggest < 100_000 {
			t.Errorf("%s: largest item %d bytes, want 100-400 KB", tt.plugin.Name, biggest)
		}
		t.Logf("%s: largest item %d bytes", tt.plugin.Name, biggest)
	}
}
