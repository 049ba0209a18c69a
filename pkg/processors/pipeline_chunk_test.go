package processors

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

type fixedClock struct{}

func (fixedClock) Now() time.Time { return time.Unix(1_700_000_000, 0) }

// lineDecoder decodes "ok..." payloads into hits; anything else fails.
type lineDecoder struct{}

func (lineDecoder) Decode(data []byte, r *records.Record) error {
	if len(data) < 2 || string(data[:2]) != "ok" {
		return errors.New("not ok")
	}
	r.Kind, r.Path = records.KindHit, string(data)
	return nil
}

// callRecorder notes the size of every Process call and flushes one item.
type callRecorder struct {
	calls   []int
	flushes int
	last    string
}

func (c *callRecorder) Process(_ context.Context, recs []records.Record, _ Emitter) error {
	c.calls = append(c.calls, len(recs))
	c.last = recs[len(recs)-1].Path
	return nil
}

func (c *callRecorder) Flush(_ context.Context, out Emitter) error {
	c.flushes++
	out.Put(Item{Table: "t", Key: "k" + strconv.Itoa(c.flushes)})
	return nil
}

func (c *callRecorder) Close(context.Context, Reason, Emitter) error { return nil }

type countingSinks struct{ items, dls int }

func (s *countingSinks) WriteItems(_ context.Context, it []Item) error {
	s.items += len(it)
	return nil
}
func (s *countingSinks) WriteDeadLetters(_ context.Context, d []DeadLetter) error {
	s.dls += len(d)
	return nil
}

// TestProcessChunks: a large batch reaches the processors in chunks of
// decodeChunk records, in order, with one Flush after the whole batch;
// dead letters of every chunk are written; and the pipeline keeps no
// record of the batch afterwards (their strings point into payloads).
func TestProcessChunks(t *testing.T) {
	rec := &callRecorder{}
	sinks := &countingSinks{}
	p, err := Open(context.Background(), Config{
		Stream:     "s",
		Processors: []Named{{Name: "rec", Factory: func(context.Context, Env) (Processor, error) { return rec, nil }}},
		NewDecoder: func() (Decoder, error) { return lineDecoder{}, nil },
		Sinks:      Sinks{Items: sinks, DeadLetters: sinks},
		Clock:      fixedClock{},
	}, Shard{Stream: "s", ShardID: "shardId-0"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*decodeChunk + 500
	batch := make([]Raw, n)
	bad := 0
	for i := range batch {
		data := "ok" + strconv.Itoa(i)
		if i%700 == 0 {
			data, bad = "bad", bad+1
		}
		batch[i] = Raw{Data: []byte(data), Meta: records.Meta{ShardID: "shardId-0", SequenceNumber: strconv.Itoa(i + 1)}}
	}
	if err := p.Process(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// Chunks of decodeChunk raws, minus the undecodable ones in each.
	want := []int{decodeChunk - 2, decodeChunk - 1, 500 - 1}
	if diff := cmp.Diff(want, rec.calls); diff != "" {
		t.Errorf("Process call sizes (-want +got):\n%s", diff)
	}
	if rec.flushes != 1 || rec.last != "ok"+strconv.Itoa(n-1) {
		t.Errorf("flushes %d, last record %q", rec.flushes, rec.last)
	}
	if sinks.dls != bad || sinks.items != 1 {
		t.Errorf("wrote %d dead letters (want %d) and %d items (want 1)", sinks.dls, bad, sinks.items)
	}
	if cap(p.recs) > decodeChunk {
		t.Errorf("pipeline holds %d records; want at most %d", cap(p.recs), decodeChunk)
	}
	for i, r := range p.recs[:cap(p.recs)] {
		if r.Path != "" || r.Meta.SequenceNumber != "" {
			t.Fatalf("record %d kept after the batch: %+v", i, r)
		}
	}
	for i, d := range p.dls[:cap(p.dls)] {
		if d.Data != nil {
			t.Fatalf("dead letter %d kept after the batch", i)
		}
	}
}
