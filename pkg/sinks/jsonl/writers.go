package jsonl

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
)

// DeadLetter is one line of a dead-letter file.
type DeadLetter struct {
	Stream       string    `json:"stream"`
	ShardID      string    `json:"shard_id"`
	Sequence     string    `json:"sequence"`
	SubSequence  int64     `json:"sub_sequence"`
	PartitionKey string    `json:"partition_key"`
	ArrivalTime  time.Time `json:"arrival_time"`
	Reason       string    `json:"reason"`
	Data         []byte    `json:"data"` // base64 in JSON
}

// DeadLetters implements processors.DeadLetterWriter on a file.
type DeadLetters struct {
	f       *file
	written atomic.Uint64
}

// OpenDeadLetters opens (creating or appending to) a dead-letter file.
func OpenDeadLetters(path string) (*DeadLetters, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &DeadLetters{f: f}, nil
}

// Written is the number of dead letters written since the file was opened.
func (d *DeadLetters) Written() uint64 { return d.written.Load() }

// Close closes the file.
func (d *DeadLetters) Close() error { return d.f.close() }

// WriteDeadLetters appends one line per dead letter and fsyncs.
func (d *DeadLetters) WriteDeadLetters(ctx context.Context, dls []results.DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	var b []byte
	for i := range dls {
		dl := &dls[i]
		line, err := json.Marshal(DeadLetter{
			Stream: dl.Stream, ShardID: dl.ShardID, Sequence: dl.Sequence, SubSequence: dl.SubSequence,
			PartitionKey: dl.PartitionKey, ArrivalTime: dl.ArrivalTime.UTC(), Reason: dl.Reason, Data: dl.Data,
		})
		if err != nil {
			return fmt.Errorf("jsonl: encode dead letter: %w", err)
		}
		b = append(append(b, line...), '\n')
	}
	if err := d.f.append(ctx, b); err != nil {
		return allFailed("jsonl dead letters", len(dls), func(i int) string { return dls[i].ShardID + "/" + dls[i].Sequence }, err)
	}
	d.written.Add(uint64(len(dls)))
	return nil
}

// Item is one line of an items file.
type Item struct {
	Table string         `json:"table"`
	Key   string         `json:"key"`
	Attrs map[string]any `json:"attrs"`
}

// Items implements processors.ItemWriter on a file, for inspecting results
// locally. Every item is appended (the file is a log, not a table).
type Items struct {
	f       *file
	written atomic.Uint64
}

// OpenItems opens (creating or appending to) an items file.
func OpenItems(path string) (*Items, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &Items{f: f}, nil
}

// Written is the number of items written since the file was opened.
func (w *Items) Written() uint64 { return w.written.Load() }

// Close closes the file.
func (w *Items) Close() error { return w.f.close() }

// WriteItems appends one line per item and fsyncs.
func (w *Items) WriteItems(ctx context.Context, items []results.Item) error {
	if len(items) == 0 {
		return nil
	}
	var b []byte
	for _, it := range items {
		line, err := json.Marshal(Item{Table: it.Table, Key: it.Key, Attrs: plainMap(it.Attrs)})
		if err != nil {
			return fmt.Errorf("jsonl: encode item %s: %w", it.Key, err)
		}
		b = append(append(b, line...), '\n')
	}
	if err := w.f.append(ctx, b); err != nil {
		return allFailed("jsonl items", len(items), func(i int) string { return items[i].Table + "/" + items[i].Key }, err)
	}
	w.written.Add(uint64(len(items)))
	return nil
}

func allFailed(op string, n int, key func(int) string, err error) error {
	failed := make([]sinks.Failure, n)
	for i := range failed {
		failed[i] = sinks.Failure{Index: i, Key: key(i), Err: err}
	}
	return sinks.NewBatchError(op, n, failed)
}

// plainMap turns DynamoDB attributes into plain JSON values: numbers stay
// exact (json.Number), binary becomes base64, sets become arrays.
func plainMap(m map[string]types.AttributeValue) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = plain(v)
	}
	return out
}

func plain(v types.AttributeValue) any {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return json.Number(v.Value)
	case *types.AttributeValueMemberB:
		return v.Value
	case *types.AttributeValueMemberBOOL:
		return v.Value
	case *types.AttributeValueMemberNULL:
		return nil
	case *types.AttributeValueMemberSS:
		return v.Value
	case *types.AttributeValueMemberNS:
		ns := make([]json.Number, len(v.Value))
		for i, n := range v.Value {
			ns[i] = json.Number(n)
		}
		return ns
	case *types.AttributeValueMemberBS:
		return v.Value
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, x := range v.Value {
			l[i] = plain(x)
		}
		return l
	case *types.AttributeValueMemberM:
		return plainMap(v.Value)
	default:
		return nil
	}
}
