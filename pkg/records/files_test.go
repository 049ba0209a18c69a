package records_test

import (
	"errors"
	"math"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/pkg/records"
)

// fileStats are aggregates over a whole file, compared with figures
// computed independently (a Python csv/regexp pass over the same files).
type fileStats struct {
	Records     int
	Headers     int
	Errors      map[int]error // line number -> sentinel
	Bytes       int64
	Status      map[int]int
	ClientIPs   int
	NoUA        int
	NoReferer   int
	Quantity    int64
	Cancels     int
	NoCustomer  int
	Revenue     float64 // sum of Quantity*UnitPrice, rounded to cents
	EdgeRecords map[string]int
}

// TestDecodeEveryLine decodes every line of every real data file with the
// file's decoder and with auto (which must agree), and allows only the
// errors listed.
func TestDecodeEveryLine(t *testing.T) {
	tests := []struct {
		file   string
		format records.Format
		want   fileStats
	}{
		{
			file: zakerFile, format: records.FormatCombined,
			want: fileStats{
				Records: 10000, Bytes: 209370397, ClientIPs: 605, NoUA: 75, NoReferer: 5620,
				Status: map[int]int{200: 9018, 301: 205, 302: 438, 304: 17, 400: 1, 403: 4, 404: 306, 499: 10, 500: 1},
			},
		},
		{
			file: elasticFile, format: records.FormatCombined,
			want: fileStats{
				// Line 8899 ends inside the quoted user agent: the file was
				// cut there. It is reported, not guessed at.
				Records: 9999, Errors: map[int]error{8899: records.ErrTruncated},
				Bytes: 2747282505, ClientIPs: 1753, NoUA: 190, NoReferer: 4072,
				Status: map[int]int{200: 9125, 206: 45, 301: 164, 304: 445, 403: 2, 404: 213, 416: 2, 500: 3},
			},
		},
		{
			file: cloudfrontFile, format: records.FormatCloudFront,
			want: fileStats{
				Records: 66, Headers: 2, Bytes: 81303, ClientIPs: 3, NoReferer: 66,
				Status:      map[int]int{200: 3, 302: 63},
				EdgeRecords: map[string]int{"FRA53": 41, "BOM52": 24, "DUB2": 1},
			},
		},
		{
			file: ordersFile, format: records.FormatOrdersCSV,
			want: fileStats{
				Records: 42481, Headers: 1, Quantity: 342228, Cancels: 728, NoCustomer: 15631, Revenue: 748957.02,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			lines := readLines(t, tt.file)
			d, err := records.NewDecoder(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			auto, _ := records.NewDecoder(records.FormatAuto)
			got := fileStats{Errors: map[int]error{}, Status: map[int]int{}, EdgeRecords: map[string]int{}}
			ips := map[string]bool{}
			var r, ra records.Record
			for i, l := range lines {
				n := i + 1
				err := d.Decode(l, &r)
				errA := auto.Decode(l, &ra)
				if (err == nil) != (errA == nil) || (err != nil && err.Error() != errA.Error()) {
					t.Errorf("line %d: %s decoder error %v, auto decoder error %v", n, tt.format, err, errA)
				} else if !sameRecord(r, ra) {
					t.Errorf("line %d: auto decoder disagrees (-%s +auto):\n%s", n, tt.format, cmp.Diff(r, ra))
				}
				switch {
				case errors.Is(err, records.ErrHeader):
					got.Headers++
					continue
				case err != nil:
					for _, kind := range []error{records.ErrEmpty, records.ErrTruncated, records.ErrMalformed, records.ErrOversize, records.ErrInvalidUTF8} {
						if errors.Is(err, kind) {
							got.Errors[n] = kind
						}
					}
					if want, ok := tt.want.Errors[n]; !ok || !errors.Is(err, want) {
						t.Errorf("line %d: unexpected error: %v", n, err)
					}
					continue
				}
				got.Records++
				got.Bytes += r.Bytes
				if r.Kind == records.KindHit {
					got.Status[r.Status]++
					ips[r.ClientIP] = true
					if r.UserAgent == "" {
						got.NoUA++
					}
					if r.Referer == "" {
						got.NoReferer++
					}
					if tt.format == records.FormatCloudFront {
						got.EdgeRecords[r.Edge]++
					}
					if r.Time.IsZero() {
						t.Errorf("line %d: hit without time", n)
					}
				}
				if r.Kind == records.KindOrder {
					got.Quantity += r.Quantity
					got.Revenue += float64(r.Quantity) * r.UnitPrice
					if r.IsCancellation() {
						got.Cancels++
						if r.Quantity >= 0 {
							t.Errorf("line %d: cancellation with quantity %d", n, r.Quantity)
						}
					}
					if r.CustomerID == "" {
						got.NoCustomer++
					}
				}
			}
			got.ClientIPs = len(ips)
			got.Revenue = math.Round(got.Revenue*100) / 100
			want := tt.want
			if want.Errors == nil {
				want.Errors = map[int]error{}
			}
			if want.Status == nil {
				want.Status = map[int]int{}
			}
			if want.EdgeRecords == nil {
				want.EdgeRecords = map[string]int{}
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("file aggregates (-want +got):\n%s", diff)
			}
		})
	}
}

// sameRecord is a fast equality for hot loops (cmp.Diff is slow): times
// must be the same instant with the same offset; other fields compare
// with ==. Zone Locations are per-decoder, so they differ as pointers.
func sameRecord(a, b records.Record) bool {
	_, oa := a.Time.Zone()
	_, ob := b.Time.Zone()
	if !a.Time.Equal(b.Time) || oa != ob {
		return false
	}
	a.Time = b.Time
	return a == b
}

// No IP, no guess: over every line of every real log, a decoded hit's
// ClientIP is an IP address. Lines whose client is not one fail with a
// typed error instead.
func TestEveryRealClientIsAnAddress(t *testing.T) {
	for _, file := range []string{zakerFile, elasticFile, cloudfrontFile} {
		t.Run(file, func(t *testing.T) {
			d, err := records.NewDecoder(records.FormatAuto)
			if err != nil {
				t.Fatal(err)
			}
			hits, forwarded := 0, 0
			for i, l := range readLines(t, file) {
				var r records.Record
				if err := d.Decode(l, &r); err != nil {
					continue // counted and checked by TestDecodeEveryLine
				}
				hits++
				if _, err := netip.ParseAddr(r.ClientIP); err != nil {
					t.Errorf("line %d: ClientIP %q is not an address", i+1, r.ClientIP)
				}
				if r.ForwardedFor != "" {
					forwarded++
				}
			}
			t.Logf("%d hits, %d with an X-Forwarded-For list", hits, forwarded)
		})
	}
}
