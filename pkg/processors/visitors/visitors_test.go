package visitors_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/visitors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/useragent"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var app = processors.AppInfo{App: "shop", Stream: "web", Tables: processors.TablesFor("shop")}

func build(t *testing.T, settings string) processors.Factory {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(settings), &node); err != nil {
		t.Fatal(err)
	}
	f, err := visitors.Plugin().Build(&node, app)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for in, want := range map[string]string{
		"top_k: 0":                 "top_k",
		"max_keys: 5":              "max_keys",
		"cache_size: -1":           "cache_size",
		"windw: 1m":                "windw",
		"top_k: 5\nmax_keys: 2000": "max_keys",
	} {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(in), &node); err != nil {
			t.Fatal(err)
		}
		if _, err := visitors.Plugin().Build(&node, app); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one naming %s", in, err, want)
		}
	}
}

var uas = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"curl/8.5.0",
	"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
}

func traffic(t0 time.Time, n int) []records.Record {
	var recs []records.Record
	for i := range n {
		recs = append(recs, records.Record{Kind: records.KindHit, Time: t0.Add(time.Duration(i) * 250 * time.Millisecond),
			ClientIP: fmt.Sprintf("192.0.2.%d", i%200), UserAgent: uas[(i*7)%len(uas)], Path: "/", Status: 200})
	}
	return recs
}

func TestConformance(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	processortest.Run(t, processortest.Suite{
		Factory: build(t, "max_keys: 50\n"),
		Records: processortest.Sequence("shardId-000000000001", traffic(t0, 2000)),
		Window:  window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second},
		Flood: func(i int) records.Record {
			return records.Record{Kind: records.KindHit, Time: t0, UserAgent: fmt.Sprintf("Bot%d/1.0 (+http://b%d.example)", i, i)}
		},
		FloodSize:    5_000,
		MaxStateKeys: 4 * (50 + 1),
	})
}

// The global item of each window equals an offline classification of the
// window's hits, across two shards.
func TestGlobalCountsEqualOffline(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	recs := traffic(t0, 600) // 150 s: windows 10:00, 10:01, 10:02
	store := processortest.NewStore()
	f := build(t, "window: 1m\n")
	for s, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		var mine []records.Record
		for i, r := range recs {
			if i%2 == s {
				mine = append(mine, r)
			}
		}
		h := &processortest.Harness{Factory: f, Store: store, Clock: processortest.NewClock(t0), Shard: processors.Shard{Stream: "web", ShardID: shard}}
		p, err := h.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Batch(ctx, p, processortest.Sequence(shard, mine)); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Close(ctx, p, processors.ShardEnded); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := useragent.New(useragent.Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]map[string]int64{} // window -> dim -> name -> hits
	for _, r := range recs {
		w := r.Time.Truncate(time.Minute).Format(time.RFC3339)
		if want[w] == nil {
			want[w] = map[string]map[string]int64{"class": {}, "browser": {}, "os": {}, "device": {}}
		}
		res := cl.Classify(r.UserAgent)
		want[w]["class"][res.Class.String()]++
		want[w]["browser"][res.Browser]++
		want[w]["os"][res.OS]++
		want[w]["device"][res.Device.String()]++
	}
	got := map[string]map[string]map[string]int64{}
	for _, it := range store.Items(app.Tables.Results) {
		if it["sk"].(*types.AttributeValueMemberS).Value != "global" {
			continue
		}
		pk := it["pk"].(*types.AttributeValueMemberS).Value // visitors#60s#<start>
		w := pk[strings.LastIndex(pk, "#")+1:]
		got[w] = map[string]map[string]int64{}
		for _, d := range []string{"class", "browser", "os", "device"} {
			got[w][d] = map[string]int64{}
			for k, v := range it[d].(*types.AttributeValueMemberM).Value {
				var n int64
				fmt.Sscan(v.(*types.AttributeValueMemberN).Value, &n)
				got[w][d][k] = n
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("global counts (-offline +processor):\n%s", diff)
	}
	if len(got) != 3 {
		t.Errorf("%d windows, want 3", len(got))
	}
}
