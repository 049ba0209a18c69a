package report

import (
	"bufio"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Bench holds Go benchmark results: name (without the -GOMAXPROCS
// suffix) -> unit -> one value per run (-count).
type Bench map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

// ParseBench reads `go test -bench` output; lines that are not results
// are skipped.
func ParseBench(r io.Reader) (Bench, error) {
	b := Bench{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		m := b[name]
		if m == nil {
			m = map[string][]float64{}
			b[name] = m
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
	}
	return b, sc.Err()
}

// Median returns the median of name's unit and whether it was measured.
func (b Bench) Median(name, unit string) (float64, bool) {
	return median(b[name][unit])
}

// Names returns the benchmark names with prefix, sorted.
func (b Bench) Names(prefix string) []string {
	var out []string
	for n := range b {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func median(v []float64) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

// spread is (max - min) / median in percent: how noisy the runs were.
func spread(v []float64) float64 {
	m, ok := median(v)
	if !ok || m == 0 || len(v) < 2 {
		return 0
	}
	return (slices.Max(v) - slices.Min(v)) / m * 100
}
