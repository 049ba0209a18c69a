package records_test

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// TestAliasPayload: with aliasing on, every format decodes the shared data
// to exactly the same records, the strings of a record that needs no
// unescaping point into the payload, and the allocation per record is
// gone; with it off (the default) the strings point elsewhere.
func TestAliasPayload(t *testing.T) {
	for _, tc := range []struct {
		format records.Format
		file   string
		// CloudFront percent-decodes its User-Agent field: every record
		// is rewritten into a scratch copy, so none aliases.
		mostAlias bool
	}{
		{records.FormatCombined, zakerFile, true},
		{records.FormatCombined, elasticFile, true},
		{records.FormatCloudFront, cloudfrontFile, false},
		{records.FormatOrdersCSV, ordersFile, true},
		{records.FormatAuto, zakerFile, true},
		{records.FormatAuto, ordersFile, true},
	} {
		t.Run(string(tc.format)+"/"+tc.file, func(t *testing.T) {
			lines := readLines(t, tc.file)
			if len(lines) > 3000 { // enough of every shape, cheap under -race
				lines = lines[:3000]
			}
			copying, _ := records.NewDecoder(tc.format)
			aliasing, _ := records.NewDecoder(tc.format)
			aliasing.(records.PayloadAliaser).AliasPayload(true)
			aliased := 0
			for i, l := range lines {
				var want, got records.Record
				werr := copying.Decode(l, &want)
				gerr := aliasing.Decode(l, &got)
				if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
					t.Fatalf("line %d: errors %v vs %v", i+1, werr, gerr)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("line %d (-copy +alias):\n%s", i+1, diff)
				}
				if inside(l, want.ClientIP) || inside(l, want.InvoiceNo) {
					t.Fatalf("line %d: the copying decoder's strings point into the payload", i+1)
				}
				if inside(l, got.ClientIP) || inside(l, got.InvoiceNo) {
					aliased++
				}
			}
			if tc.mostAlias && aliased < len(lines)/2 {
				t.Errorf("%d of %d records alias their payload; want most", aliased, len(lines))
			}
		})
	}
}

// inside reports whether s is non-empty and its bytes lie within b.
func inside(b []byte, s string) bool {
	if len(s) == 0 || len(b) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(&b[0]))
	return p >= lo && p < lo+uintptr(len(b))
}

// TestAliasPayloadAllocs pins the point of aliasing: no allocation per
// access-log line.
func TestAliasPayloadAllocs(t *testing.T) {
	line := readLines(t, zakerFile)[0]
	for _, tc := range []struct {
		alias bool
		want  float64
	}{{false, 1}, {true, 0}} {
		d, _ := records.NewDecoder(records.FormatAuto)
		d.(records.PayloadAliaser).AliasPayload(tc.alias)
		var r records.Record
		got := testing.AllocsPerRun(100, func() {
			if err := d.Decode(line, &r); err != nil && !errors.Is(err, records.ErrHeader) {
				t.Fatal(err)
			}
		})
		if got != tc.want {
			t.Errorf("alias %v: %.1f allocs per record, want %.0f", tc.alias, got, tc.want)
		}
	}
	// Aliased strings see the payload: the caller must leave it alone.
	d, _ := records.NewDecoder(records.FormatCombined)
	d.(records.PayloadAliaser).AliasPayload(true)
	buf := bytes.Clone(line)
	var r records.Record
	if err := d.Decode(buf, &r); err != nil {
		t.Fatal(err)
	}
	ip := r.ClientIP
	buf[0] = 'X'
	if ip[0] != 'X' {
		t.Errorf("aliased ClientIP %q did not follow the payload", ip)
	}
}
