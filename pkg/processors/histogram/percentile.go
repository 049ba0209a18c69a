package histogram

import (
	"math"
	"strconv"
)

// Percentile is a percentile estimated from bucket counts: the bucket
// holding the response of rank ceil(P x requests) (nearest rank), and an
// estimate inside it by linear interpolation.
type Percentile struct {
	P      float64 // in (0, 1]
	Bucket int
	// Lo and Hi bound the bucket: every response in it has Lo <= size <=
	// Hi. Overflow buckets have no upper bound (Hi = -1).
	Lo, Hi   int64
	Estimate int64
}

// Overflow reports whether the percentile lies in the overflow bucket.
func (p Percentile) Overflow() bool { return p.Hi < 0 }

// String formats p as "~E B (in LO-HI)".
func (p Percentile) String() string {
	if p.Overflow() {
		return ">= " + strconv.FormatInt(p.Lo, 10) + " B (overflow bucket)"
	}
	return "~" + strconv.FormatInt(p.Estimate, 10) + " B (bucket " + BucketLabel(p.Lo, p.Hi) + ")"
}

// BucketBounds returns the sizes bucket i of edges holds: [lo, hi], hi =
// -1 for the overflow bucket.
func BucketBounds(edges []int64, i int) (lo, hi int64) {
	if i > 0 {
		lo = edges[i-1] + 1
	}
	if i >= len(edges) {
		return lo, -1
	}
	return lo, edges[i]
}

// BucketLabel formats bucket bounds: "100-199", "0", ">=10000".
func BucketLabel(lo, hi int64) string {
	switch {
	case hi < 0:
		return ">=" + strconv.FormatInt(lo, 10)
	case lo == hi:
		return strconv.FormatInt(lo, 10)
	}
	return strconv.FormatInt(lo, 10) + "-" + strconv.FormatInt(hi, 10)
}

// Percentiles estimates the percentiles ps (each in (0, 1]) of a
// histogram with bucket bounds edges and counts (len(edges)+1); ok is
// false when it counts nothing.
func Percentiles(edges, counts []int64, ps ...float64) (out []Percentile, ok bool) {
	var n int64
	for _, c := range counts {
		n += c
	}
	if n == 0 || len(counts) != len(edges)+1 {
		return nil, false
	}
	for _, p := range ps {
		rank := max(int64(math.Ceil(p*float64(n))), 1)
		var cum int64
		for i, c := range counts {
			if cum+c < rank {
				cum += c
				continue
			}
			lo, hi := BucketBounds(edges, i)
			est := lo
			if hi > lo {
				// The rank's position inside the bucket, spread evenly.
				est = lo + int64(float64(hi-lo)*float64(rank-cum)/float64(c))
			}
			out = append(out, Percentile{P: p, Bucket: i, Lo: lo, Hi: hi, Estimate: est})
			break
		}
	}
	return out, true
}
