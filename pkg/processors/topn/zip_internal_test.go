package topn

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/processors/window"
	"github.com/shardwatch/shardwatch/pkg/processors/windowed"
)

// Partials are written deflated and read back equal; partials written
// as text by earlier versions still decode.
func TestPartialRowsDeflatedAndTextStillRead(t *testing.T) {
	p := Partial{Requests: 7, Bytes: 700, Keys: 2,
		IPs:   []Entry{{Key: "10.0.0.1", Requests: 5, Bytes: 500}, {Key: "10.0.0.2", Requests: 2, Bytes: 200}},
		Hosts: []Entry{{Key: "example.com", Requests: 7, Bytes: 700}}}
	m := window.Header{}.Attrs(16)
	encodePartial(windowed.FieldsOf(m), &p)
	if _, ok := m[attrIPs]; ok {
		t.Fatal("rows written as text too")
	}
	got, err := decodePartial(windowed.FieldsOf(m))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("deflated round trip (-want +got):\n%s", diff)
	}
	delete(m, attrIPs+window.Zipped)
	delete(m, attrHosts+window.Zipped)
	m[attrIPs] = window.Str(encodeEntries(p.IPs))
	m[attrHosts] = window.Str(encodeEntries(p.Hosts))
	if got, err = decodePartial(windowed.FieldsOf(m)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("text partial (-want +got):\n%s", diff)
	}
	if _, err := window.Inflate([]byte("not deflate")); err == nil {
		t.Error("inflate of garbage: no error")
	}
}
