package records

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestHasControl checks the SWAR test against the obvious loop, for every
// byte value at every position and for random inputs of every length
// around the 8-byte word size.
func TestHasControl(t *testing.T) {
	naive := func(b []byte) bool {
		for _, c := range b {
			if c < 0x20 {
				return true
			}
		}
		return false
	}
	check := func(b []byte) {
		if got, want := hasControl(b), naive(b); got != want {
			t.Fatalf("hasControl(%q) = %v, want %v", b, got, want)
		}
	}
	for n := 1; n <= 17; n++ {
		for pos := range n {
			for c := range 256 {
				b := make([]byte, n)
				for i := range b {
					b[i] = 'a'
					if i > pos {
						b[i] = 0xff // high bytes after the probe must not mask it
					}
				}
				b[pos] = byte(c)
				check(b)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(0x1c + rng.IntN(0xe4))
		}
		check(b)
	}
}

// TestCivilTime checks the direct Unix computation against time.Date
// over every day from 1970 to 2400 at an awkward offset.
func TestCivilTime(t *testing.T) {
	loc := time.FixedZone("", -(9*3600 + 30*60))
	for d := time.Date(1970, 1, 1, 23, 59, 58, 999, loc); d.Year() < 2400; d = d.AddDate(0, 0, 1) {
		c := civil{year: d.Year(), month: int(d.Month()), day: d.Day(), hour: d.Hour(), min: d.Minute(), sec: d.Second(), nsec: d.Nanosecond()}
		_, off := d.Zone()
		if got := c.time(off, loc); !got.Equal(d) || got.Location() != loc {
			t.Fatalf("civil %+v = %v, want %v", c, got, d)
		}
	}
}

func TestDefaultCloudFrontLayout(t *testing.T) {
	l, ok := buildLayout(CloudFrontStandardFields)
	if !ok {
		t.Fatal("the standard CloudFront fields do not make a layout")
	}
	// cs-protocol-version, the last column used, is the 24th.
	if l.need != 24 || l.byIdx[2] != cfEdge || l.byIdx[10] != cfUA {
		t.Errorf("layout need=%d edge=%d ua=%d", l.need, l.byIdx[2], l.byIdx[10])
	}
}
