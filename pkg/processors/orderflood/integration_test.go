package orderflood

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/records"
	"github.com/shardwatch/shardwatch/pkg/sinks/dynamo"
)

// TestIntegrationElection runs four shards on DynamoDB Local, each of
// which alone breaches the threshold in the same periods, with their
// batches and flushes racing: every period yields exactly one message
// and one published history item. It also exercises the item layout
// against the real service (key ranges, maps, string sets, markers).
func TestIntegrationElection(t *testing.T) {
	client := testenv.DynamoDB(t)
	app := testenv.Name(t, "of")
	tables := processors.TablesFor(app)
	testenv.CreateTable(t, tables.Results, "pk", "sk")
	testenv.CreateTable(t, tables.Alarms, "alarm", "period")
	store, err := dynamo.NewStore(client, dynamo.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := dynamo.NewItemWriter(client, dynamo.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Threshold = 10
	f, err := NewFactory(cfg, processors.AppInfo{App: app, Stream: "s", AlarmTopicARN: "arn:aws:sns:us-east-1:000000000000:" + app,
		Tables: tables})
	if err != nil {
		t.Fatal(err)
	}
	const shards, periods = 4, 3
	clock := processortest.NewClock(time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC))
	// Alarms are published synchronously, through the Env's publisher.
	pub := &processortest.Publisher{}
	// write makes a recorder's items durable the way the pipeline does.
	write := func(ctx context.Context, rec *processortest.Recorder) error {
		if len(rec.Messages) > 0 {
			return fmt.Errorf("%d messages through the emitter; alarms go through Env.Publisher", len(rec.Messages))
		}
		return writer.WriteItems(ctx, rec.Items)
	}
	var wg sync.WaitGroup
	errs := make(chan error, shards)
	procs := make([]processors.Processor, shards)
	for s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				ctx := t.Context()
				shard := fmt.Sprintf("shardId-%012d", s)
				p, err := f(ctx, processors.Env{Shard: processors.Shard{Stream: "s", ShardID: shard, WorkerID: fmt.Sprint("w", s)},
					Clock: clock, Store: store, Publisher: pub})
				if err != nil {
					return err
				}
				procs[s] = p
				seq := 0
				for period := range periods {
					recs := make([]records.Record, 12)
					for i := range recs {
						recs[i] = records.Record{Kind: records.KindOrder,
							Time:      time.Date(2026, 11, 22, 9, 41+period, i/2, 0, time.UTC),
							InvoiceNo: fmt.Sprintf("%d-%d-%d", s, period, i), CustomerID: fmt.Sprint(17850 + i%3), Country: "France",
							Meta: records.Meta{ShardID: shard, SequenceNumber: processortest.SeqNum(seq)}}
						seq++
					}
					rec := &processortest.Recorder{}
					if err := p.Process(ctx, recs, rec); err != nil {
						return err
					}
					if err := p.Flush(ctx, rec); err != nil {
						return err
					}
					if err := write(ctx, rec); err != nil {
						return err
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The shards go idle: the fleet decides the rest.
	clock.Set(time.Date(2026, 11, 22, 9, 44, 0, 0, time.UTC))
	for range 4 {
		clock.Advance(cfg.Idle + time.Second)
		for _, p := range procs {
			rec := &processortest.Recorder{}
			if err := p.Flush(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
			if err := write(t.Context(), rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	msgs := pub.Take()
	byPeriod := map[string]int{}
	for _, m := range msgs {
		byPeriod[m.Attributes["period"]]++
	}
	if len(msgs) != periods || len(byPeriod) != periods {
		t.Errorf("messages per period = %v; want exactly one in each of %d periods", byPeriod, periods)
	}
	items, err := store.Query(t.Context(), tables.Alarms, "alarm", "order-flood", "period", "2026-11-22T09:00:00Z", "2026-11-22T10:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	published := 0
	for _, it := range items {
		if p, ok := it["published"]; ok && processortest.Printable(p) == "BOOL:true" {
			published++
		}
	}
	if len(items) != periods || published != periods {
		t.Errorf("alarm history: %d items, %d published; want %d of each", len(items), published, periods)
	}
}
