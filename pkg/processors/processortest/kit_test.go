package processortest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

type fakeT struct{ errs []string }

func (f *fakeT) Helper()                        {}
func (f *fakeT) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

func TestCheckEmission(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	k := &kit{s: Suite{Window: window.Config{Size: time.Minute, Grace: 5 * time.Second, Idle: 30 * time.Second}, MaxItemsPerFlush: 2}}
	final := func(end time.Time) processors.Item {
		h := window.Header{PK: "p", SK: "s", Start: end.Add(-time.Minute), End: end, Final: true}
		return processors.Item{Table: "t", Key: "p|s", Attrs: h.Attrs(0)}
	}
	end := t0.Add(time.Minute)
	tests := []struct {
		name    string
		items   []processors.Item
		wm, now time.Time
		want    int // errors
	}{
		{"watermark past grace", []processors.Item{final(end)}, end.Add(5 * time.Second), end, 0},
		{"clock past grace+idle", []processors.Item{final(end)}, end, end.Add(35 * time.Second), 0},
		{"too early", []processors.Item{final(end)}, end.Add(4 * time.Second), end.Add(34 * time.Second), 1},
		{"too many items", []processors.Item{final(t0), final(t0), final(t0)}, end, end, 1},
		{"no key", []processors.Item{{Table: "t", Attrs: map[string]types.AttributeValue{}}}, end, end, 1},
		{"too big", []processors.Item{{Table: "t", Key: "k", Attrs: map[string]types.AttributeValue{"x": window.Str(strings.Repeat("x", MaxItemBytes))}}}, end, end, 1},
	}
	for _, tt := range tests {
		f := &fakeT{}
		k.checkEmission(f, &Recorder{Items: tt.items}, tt.wm, tt.now, tt.name)
		if len(f.errs) != tt.want {
			t.Errorf("%s: %d errors %q, want %d", tt.name, len(f.errs), f.errs, tt.want)
		}
	}
}

func TestStore(t *testing.T) {
	s := NewStore()
	ctx := context.Background()
	item := func(pk, sk string, n int64) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": window.Str(pk), "sk": window.Str(sk), "n": window.Int(n)}
	}
	if err := s.Apply([]processors.Item{
		{Table: "a-results", Key: "1", Attrs: item("p", "shard#2", 1)},
		{Table: "a-results", Key: "2", Attrs: item("p", "shard#1", 2)},
		{Table: "a-results", Key: "3", Attrs: item("p", "global", 3)},
		{Table: "a-results", Key: "4", Attrs: item("q", "shard#1", 4)},
		{Table: "a-results", Key: "1", Attrs: item("p", "shard#2", 5)}, // overwrite
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Query(ctx, "a-results", "pk", "p", "sk", "shard#", "shard#\U0010FFFF")
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, it := range got {
		ns = append(ns, Printable(it["sk"])+"="+Printable(it["n"]))
	}
	if diff := cmp.Diff([]string{"S:shard#1=N:2", "S:shard#2=N:5"}, ns); diff != "" {
		t.Errorf("Query (-want +got):\n%s", diff)
	}
	alarm := map[string]types.AttributeValue{"alarm": window.Str("flood"), "period": window.Str("09:41")}
	for i, want := range []bool{true, false} {
		ok, err := s.PutIfAbsent(ctx, "a-alarms", "alarm", alarm)
		if err != nil || ok != want {
			t.Errorf("PutIfAbsent #%d = %v, %v; want %v", i, ok, err, want)
		}
	}
	if err := s.Apply([]processors.Item{{Table: "a-results", Key: "x", Attrs: map[string]types.AttributeValue{"pk": window.Str("p")}}}); err == nil {
		t.Error("Apply accepted an item without a sort key")
	}
	if diff := cmp.Diff([]string{"a-alarms", "a-results"}, s.Tables()); diff != "" {
		t.Errorf("Tables (-want +got):\n%s", diff)
	}
}
