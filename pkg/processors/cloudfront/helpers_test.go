package cloudfront_test

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var app = processors.AppInfo{App: "demo", Stream: "web", Tables: processors.TablesFor("demo")}

func build(t testing.TB, p processors.Plugin, conf string) processors.Factory {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(conf), &node); err != nil {
		t.Fatal(err)
	}
	f, err := p.Build(&node, app)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// configError returns the error of building p with conf, "" for none.
func configError(t *testing.T, p processors.Plugin, conf string) string {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(conf), &node); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Build(&node, app); err != nil {
		return err.Error()
	}
	return ""
}

// sampleLog decodes the CloudFront sample of ../shared/data line by line
// (skips without ../shared).
func sampleLog(t testing.TB) []records.Record {
	t.Helper()
	raw, err := os.ReadFile(testenv.SharedData(t, "cloudfront/aws-samples-cloudfront.log"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := records.NewDecoder(records.FormatCloudFront)
	if err != nil {
		t.Fatal(err)
	}
	var out []records.Record
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var r records.Record
		if err := dec.Decode(bytes.Clone(sc.Bytes()), &r); err == nil && r.Kind == records.KindHit {
			out = append(out, r)
		}
	}
	if len(out) < 60 {
		t.Fatalf("decoded %d records of the CloudFront sample, want 66", len(out))
	}
	return out
}

var (
	edges    = []string{"FRA53", "BOM52", "DUB2", "IAD89-C1", "NRT57"}
	dists    = []string{"d111111abcdef8.cloudfront.net", "d345qc258n54ge.cloudfront.net", "cdn.example.com"}
	results  = []string{"Hit", "Hit", "Hit", "RefreshHit", "Miss", "Miss", "Error", "LambdaGeneratedResponse", "Redirect", "OriginShieldHit"}
	agents   = []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:61.0) Gecko/20100101 Firefox/61.0", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "curl/8.5.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"}
	trafficT = time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
)

// traffic is ten minutes of synthetic CloudFront records, a few seconds
// out of order, with some records of other sources mixed in.
func traffic() []records.Record {
	recs := make([]records.Record, 3000)
	for i := range recs {
		r := records.Record{Kind: records.KindHit,
			Time:     trafficT.Add(time.Duration(i)*200*time.Millisecond - time.Duration(i%7)*time.Second),
			ClientIP: fmt.Sprintf("10.0.%d.%d", i%3, i%40), Status: 200, Bytes: int64(100 + (i*7919)%50_000),
			Host: dists[i%len(dists)], Edge: edges[(i/3)%len(edges)], EdgeResult: results[i%len(results)],
			UserAgent: agents[(i/2)%len(agents)], TimeTaken: time.Duration(1+i%900) * time.Millisecond, Path: fmt.Sprintf("/p/%d", i%30)}
		if i%97 == 0 {
			r.Edge = "" // an access-log hit: not CloudFront
		}
		recs[i] = r
	}
	return processortest.Sequence("shardId-000000000001", recs)
}

func shardOf(key string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(shards))
}

// runShards spreads recs over shards by client IP and edge (so every pair
// reaches several shards), runs one processor per shard on one store in
// batches of 7 until the shards end, and returns the store.
func runShards(t *testing.T, f processors.Factory, recs []records.Record, shards int) *processortest.Store {
	t.Helper()
	store := processortest.NewStore()
	clock := processortest.NewClock(recs[0].Time)
	split := make([][]records.Record, shards)
	for _, r := range recs {
		i := shardOf(r.ClientIP+r.Path, shards)
		split[i] = append(split[i], r)
	}
	ctx := t.Context()
	for i := range shards {
		id := fmt.Sprintf("shardId-%012d", i)
		processortest.Sequence(id, split[i])
		h := &processortest.Harness{Factory: f, Store: store, Clock: clock, Shard: processors.Shard{Stream: "web", ShardID: id}}
		p, err := h.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(split[i]); off += 7 {
			b := split[i][off:min(off+7, len(split[i]))]
			if _, err := h.Batch(ctx, p, b); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.Close(ctx, p, processors.ShardEnded); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

// globals returns the final global items of the processor called name.
func globals(t *testing.T, store *processortest.Store, name string, shards int) []map[string]types.AttributeValue {
	t.Helper()
	var out []map[string]types.AttributeValue
	for _, it := range store.Items(app.Tables.Results) {
		pk, _ := window.GetStr(it, window.AttrPK)
		if sk, _ := window.GetStr(it, window.AttrSK); sk != window.GlobalSK || len(pk) < len(name) || pk[:len(name)+1] != name+"#" {
			continue
		}
		if final, _ := window.GetBool(it, window.AttrFinal); !final {
			t.Errorf("%s: global item not final", pk)
		}
		out = append(out, it)
	}
	if len(out) == 0 {
		t.Fatalf("no %s global items", name)
	}
	return out
}

func windowStart(t *testing.T, it map[string]types.AttributeValue) time.Time {
	t.Helper()
	h, err := window.ParseHeader(it)
	if err != nil {
		t.Fatal(err)
	}
	return h.Start
}
