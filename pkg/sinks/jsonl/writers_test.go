package jsonl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
)

func readLines[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, v)
	}
	return out
}

func TestDeadLetters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	arrival := time.Date(2026, 11, 22, 9, 41, 0, 5, time.UTC)
	dls := []results.DeadLetter{
		{Stream: "s", ShardID: "shardId-1", Sequence: "495", SubSequence: 2, PartitionKey: "pk", ArrivalTime: arrival, Reason: "bad", Data: []byte{0, 0xff, '\n'}},
		{Stream: "s", ShardID: "shardId-2", Sequence: "496", Reason: "worse", Data: []byte("GET /")},
	}
	// Two opens append: a restart keeps earlier dead letters.
	for range 2 {
		w, err := OpenDeadLetters(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteDeadLetters(t.Context(), dls); err != nil {
			t.Fatal(err)
		}
		if w.Written() != 2 {
			t.Errorf("Written = %d", w.Written())
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteDeadLetters(t.Context(), dls); !errors.Is(err, ErrClosed) {
			t.Errorf("write after close: %v", err)
		}
	}
	got := readLines[DeadLetter](t, path)
	var want []DeadLetter
	for range 2 {
		for _, dl := range dls {
			want = append(want, DeadLetter(dl))
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("lines (-want +got):\n%s", d)
	}
}

func TestItems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "items.jsonl")
	w, err := OpenItems(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	items := []results.Item{{Table: "app-results", Key: "k1", Attrs: map[string]types.AttributeValue{
		"pk":    &types.AttributeValueMemberS{Value: "topn#2026-11-22T09:41"},
		"count": &types.AttributeValueMemberN{Value: "12345678901234567890"},
		"ok":    &types.AttributeValueMemberBOOL{Value: true},
		"top":   &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"ip": &types.AttributeValueMemberS{Value: "10.0.0.1"}}}}},
		"tags":  &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"raw":   &types.AttributeValueMemberB{Value: []byte("hi")},
		"none":  &types.AttributeValueMemberNULL{Value: true},
	}}}
	if err := w.WriteItems(t.Context(), items); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"table":"app-results","key":"k1","attrs":{"count":12345678901234567890,"none":null,"ok":true,"pk":"topn#2026-11-22T09:41","raw":"aGk=","tags":["a","b"],"top":[{"ip":"10.0.0.1"}]}}` + "\n"
	if d := cmp.Diff(want, string(raw)); d != "" {
		t.Errorf("file (-want +got):\n%s", d)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = w.WriteItems(ctx, items)
	var be *sinks.BatchError
	if !errors.As(err, &be) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled write: %v", err)
	}
}
