package windowed

import (
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

func header() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{window.AttrPK: window.Str("hist#60s#2026-11-22T09:41:00Z"), window.AttrSK: window.Str("shard#shardId-000000000001"),
		window.AttrKind: window.Str(window.KindPartial), window.AttrFinal: window.Bool(false)}
}

// TestPackRoundTrip: a partial whose fields take more write units as
// attributes than deflated is packed, and reads back the same, through
// FieldsOf as through the runner.
func TestPackRoundTrip(t *testing.T) {
	attrs := header()
	head := map[string]bool{}
	for k := range attrs {
		head[k] = true
	}
	counts := map[string]types.AttributeValue{}
	var list []types.AttributeValue
	for i := range 200 {
		counts[fmt.Sprintf("host-%03d.example", i)] = window.Int(int64(1000 + i))
		list = append(list, window.Int(int64(i*i)))
	}
	fields := map[string]types.AttributeValue{
		"hosts": &types.AttributeValueMemberM{Value: counts}, "edges": &types.AttributeValueMemberL{Value: list},
		"name": window.Str("sizes"), "raw": &types.AttributeValueMemberB{Value: []byte{0, 1, 2}}, "on": window.Bool(true),
		"ss": &types.AttributeValueMemberSS{Value: []string{"a", "b"}}, "ns": &types.AttributeValueMemberNS{Value: []string{"1", "2.5"}},
		"bs": &types.AttributeValueMemberBS{Value: [][]byte{{9}, {8, 7}}}, "nil": &types.AttributeValueMemberNULL{Value: true},
	}
	maps.Copy(attrs, fields)
	want := maps.Clone(attrs)
	pack(attrs, head)
	if _, ok := attrs[attrPacked]; !ok || len(attrs) != len(head)+1 {
		t.Fatalf("not packed: %d attributes", len(attrs))
	}
	if plain, packed := window.ItemSize(want), window.ItemSize(attrs); packed >= plain {
		t.Errorf("packed %d bytes, plain %d", packed, plain)
	}
	got, err := unpack(attrs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(printable(want), printable(got)); diff != "" {
		t.Errorf("unpacked (-want +got):\n%s", diff)
	}
	if n, err := FieldsOf(attrs).Counts("hosts"); err != nil || n["host-007.example"] != 1007 {
		t.Errorf("FieldsOf(packed).Counts = %v, %v", n["host-007.example"], err)
	}
}

// printable renders attribute values for comparison.
func printable(m map[string]types.AttributeValue) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(appendValue(nil, v))
	}
	return out
}

// TestPackOnlyWhenCheaper: a small partial stays as it is.
func TestPackOnlyWhenCheaper(t *testing.T) {
	attrs := header()
	head := map[string]bool{}
	for k := range attrs {
		head[k] = true
	}
	attrs["requests"] = window.Int(42)
	want := maps.Clone(attrs)
	pack(attrs, head)
	if diff := cmp.Diff(printable(want), printable(attrs)); diff != "" {
		t.Errorf("a one-unit partial changed (-want +got):\n%s", diff)
	}
	if got, err := unpack(attrs); err != nil || len(got) != len(want) {
		t.Errorf("unpack(plain) = %d attributes, %v", len(got), err)
	}
}

// TestUnpackCorrupt: a damaged packed attribute is a typed error, and
// every Fields getter returns it.
func TestUnpackCorrupt(t *testing.T) {
	good := window.Deflate(string(appendValue(nil, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"n": window.Int(1)}})))
	for name, z := range map[string][]byte{
		"not deflate":   {0xff, 0xfe, 0xfd},
		"not a map":     window.Deflate(string(appendValue(nil, window.Int(1)))),
		"truncated":     window.Deflate(string(appendValue(nil, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"n": window.Str("long value")}}))[:6]),
		"huge count":    window.Deflate("m\xff\xff\xff\xff\x0f"),
		"trailing byte": window.Deflate(string(appendValue(nil, &types.AttributeValueMemberM{})) + "x"),
	} {
		attrs := header()
		attrs[attrPacked] = &types.AttributeValueMemberB{Value: z}
		if _, err := unpack(attrs); !errors.Is(err, window.ErrBadItem) {
			t.Errorf("%s: unpack error %v, want ErrBadItem", name, err)
		}
		if _, err := FieldsOf(attrs).Int("n"); !errors.Is(err, window.ErrBadItem) {
			t.Errorf("%s: Fields.Int error %v, want ErrBadItem", name, err)
		}
	}
	attrs := header()
	attrs[attrPacked] = &types.AttributeValueMemberB{Value: good}
	if n, err := FieldsOf(attrs).Int("n"); err != nil || n != 1 {
		t.Errorf("good packed item: %d, %v", n, err)
	}
}
