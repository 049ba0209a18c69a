package botdetect

import (
	"context"
	"hash/fnv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/sinks/dynamo"
)

// itemStore is what a run writes to and reads back from.
type itemStore interface {
	processors.Store
	processors.ItemWriter
}

// fakeItems adapts the in-memory store to itemStore.
type fakeItems struct{ *processortest.Store }

func (f fakeItems) WriteItems(_ context.Context, items []processors.Item) error {
	return f.Apply(items)
}

type dynamoItems struct {
	*dynamo.Store
	*dynamo.ItemWriter
}

// runFleet feeds the Zaker log to two shards (split by client IP, as a
// producer keyed on the IP would) through store, with a failover of shard
// 2 half-way, and returns the global results by window.
func runFleet(t *testing.T, app processors.AppInfo, st itemStore, recs []records.Record) map[time.Time]Result {
	t.Helper()
	ctx := t.Context()
	f, err := NewFactory(DefaultConfig(), app, newTestDetector(t, UAConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	var parts [2][]records.Record
	for _, r := range recs {
		h := fnv.New32a()
		h.Write([]byte(r.ClientIP))
		parts[h.Sum32()%2] = append(parts[h.Sum32()%2], r)
	}
	clock := processortest.NewClock(recs[0].Time)
	open := func(i int) processors.Processor {
		shard := []string{"shardId-000000000001", "shardId-000000000002"}[i]
		p, err := f(ctx, processors.Env{Shard: processors.Shard{ShardID: shard}, Clock: clock, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(rec *processortest.Recorder) {
		if err := st.WriteItems(ctx, rec.Items); err != nil {
			t.Fatal(err)
		}
	}
	var procs [2]processors.Processor
	for i := range parts {
		parts[i] = processortest.Sequence([]string{"shardId-000000000001", "shardId-000000000002"}[i], parts[i])
		procs[i] = open(i)
	}
	const batch = 250
	for lo := 0; lo < max(len(parts[0]), len(parts[1])); lo += batch {
		for i, p := range procs {
			if lo >= len(parts[i]) {
				continue
			}
			b := parts[i][lo:min(lo+batch, len(parts[i]))]
			clock.Set(b[len(b)-1].Time.Add(time.Second))
			rec := &processortest.Recorder{}
			if err := p.Process(ctx, b, rec); err != nil {
				t.Fatal(err)
			}
			if err := p.Flush(ctx, rec); err != nil {
				t.Fatal(err)
			}
			write(rec)
		}
		if lo == 1000 { // shard 2's worker dies; a new owner restores it
			if err := procs[1].Close(ctx, processors.LeaseLost, &processortest.Recorder{}); err != nil {
				t.Fatal(err)
			}
			procs[1] = open(1)
		}
	}
	clock.Advance(time.Hour)
	for _, p := range procs {
		rec := &processortest.Recorder{}
		if err := p.Close(ctx, processors.ShardEnded, rec); err != nil {
			t.Fatal(err)
		}
		write(rec)
	}
	out := map[time.Time]Result{}
	k := keysFor(time.Minute)
	for start := recs[0].Time.Truncate(time.Minute); !start.After(recs[len(recs)-1].Time); start = start.Add(time.Minute) {
		items, err := st.Query(ctx, app.Tables.Results, window.AttrPK, k.Window(start), window.AttrSK, window.GlobalSK, window.GlobalSK)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 1 {
			r, err := ParseGlobal(items[0])
			if err != nil {
				t.Fatal(err)
			}
			out[r.Start] = r
		}
	}
	return out
}

// TestIntegrationDynamoDB runs the same two-shard fleet (with a failover)
// against DynamoDB Local and the in-memory store: binary chunk state,
// string lists and key ranges survive the real service, and the global
// results are identical.
func TestIntegrationDynamoDB(t *testing.T) {
	recs := loadRecords(t, zakerFile, records.FormatCombined)[:3000]
	client := testenv.DynamoDB(t)
	app := processors.AppInfo{App: testenv.Name(t, "bd")}
	app.Tables = processors.TablesFor(app.App)
	testenv.CreateTable(t, app.Tables.Results, "pk", "sk")
	ddbStore, err := dynamo.NewStore(client, dynamo.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := dynamo.NewItemWriter(client, dynamo.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := runFleet(t, app, dynamoItems{ddbStore, w}, recs)
	want := runFleet(t, app, fakeItems{processortest.NewStore()}, recs)
	if len(want) < 10 {
		t.Fatalf("only %d windows in the reference run", len(want))
	}
	for _, r := range want {
		if r.Shards != 2 || r.FinalShards != 2 {
			t.Errorf("window %s merged %d shards (%d final), want 2", r.Start, r.Shards, r.FinalShards)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DynamoDB Local results differ from the in-memory store (-mem +ddb):\n%s", diff)
	}
}
