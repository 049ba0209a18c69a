package bench_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/botdetect"
	"github.com/shardwatch/shardwatch/pkg/processors/builtin"
	"github.com/shardwatch/shardwatch/pkg/processors/processortest"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// BenchmarkProcessor is each built-in processor alone, with its default
// settings, on decoded real records re-timed to a full shard (see
// BenchmarkChain): Process then Flush per batch of 250,
// emitted items applied to an in-memory store (the processors Query it for
// global merges). Each pass over the file is a new lease. botdetect runs
// with a warm User-Agent cache; the order processors run on the orders,
// the others on the Zaker access log.
func BenchmarkProcessor(b *testing.B) {
	reg, err := processors.NewRegistry(builtin.Plugins()...)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range reg.Names() {
		file := zakerFile
		if orderProcessors[name] {
			file = ordersFile
		}
		b.Run(name, func(b *testing.B) {
			recs := decodedFull(b, file)
			var f processors.Factory
			var err error
			if name == botdetect.Name {
				var det *botdetect.Detector
				if det, err = botdetect.NewDetector(botdetect.UAConfig{}); err != nil {
					b.Fatal(err)
				}
				for i := range recs {
					det.Classify(recs[i].UserAgent)
				}
				f, err = botdetect.NewFactory(botdetect.DefaultConfig(), benchApp, det)
			} else {
				f, err = reg.Build(name, nil, benchApp)
			}
			if err != nil {
				b.Fatal(err)
			}
			runProcessor(b, f, recs)
		})
	}
}

// orderProcessors only look at orders (the rest only at hits).
var orderProcessors = map[string]bool{"orderflood": true, "orderarchive": true}

func runProcessor(b *testing.B, f processors.Factory, recs []records.Record) {
	ctx := context.Background()
	h := &processortest.Harness{Factory: f, Clock: processortest.NewClock(recs[0].Time),
		Shard: processors.Shard{Stream: benchApp.Stream, ShardID: benchShard, WorkerID: "bench"}}
	var p processors.Processor
	out := &processortest.Recorder{}
	runBatches(b, workload{
		n: len(recs),
		start: func() {
			h.Store = processortest.NewStore()
			h.Clock.Set(recs[0].Time)
			var err error
			if p, err = h.Start(ctx); err != nil {
				b.Fatal(err)
			}
		},
		batch: func(lo, hi int) {
			h.Clock.Set(recs[hi-1].Time)
			if err := p.Process(ctx, recs[lo:hi], out); err != nil {
				b.Fatal(err)
			}
			if err := p.Flush(ctx, out); err != nil {
				b.Fatal(err)
			}
			if err := h.Store.Apply(out.Items); err != nil {
				b.Fatal(err)
			}
			out.Reset()
		},
		end: func() {
			if err := p.Close(ctx, processors.LeaseLost, out); err != nil {
				b.Fatal(err)
			}
			out.Reset()
		},
	})
}

// decodeAll decodes payloads (format auto) into records that own their
// strings, with a shard's sequence numbers; undecodable lines are dropped.
func decodeAll(tb testing.TB, payloads [][]byte) []records.Record {
	tb.Helper()
	dec, err := records.NewDecoder(records.FormatAuto)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]records.Record, 0, len(payloads))
	for _, p := range payloads {
		out = append(out, records.Record{})
		if err := dec.Decode(bytes.Clone(p), &out[len(out)-1]); err != nil {
			out = out[:len(out)-1]
		}
	}
	return processortest.Sequence(benchShard, out)
}

// decodedFull returns the records of file re-timed to a full shard,
// decoded once per file (the processors only read them).
func decodedFull(tb testing.TB, file string) []records.Record {
	tb.Helper()
	if v, ok := decoded.Load(file); ok {
		return v.([]records.Record)
	}
	recs := decodeAll(tb, retime(tb, lines(tb, file), fullRate))
	decoded.Store(file, recs)
	return recs
}

var decoded sync.Map // file -> []records.Record
