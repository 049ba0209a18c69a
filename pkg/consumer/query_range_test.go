package consumer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// TestQueryHistogramRange replays the Zaker log into 100-byte linear
// buckets (as the Kibana/Vega example draws them) and checks `query
// histogram --from --to` against an offline computation: the counts
// summed over a period, and p50/p90/p99 in the bucket of the exact
// percentile.
func TestQueryHistogramRange(t *testing.T) {
	zaker := testenv.SharedData(t, "access/zaker-access-10k.log")
	getenv := stackEnv(t)
	app := testenv.Name(t, "hrange")
	replayTables(t, app, false)
	cfg := filepath.Join(t.TempDir(), "replay.yaml")
	writeFile(t, cfg, fmt.Sprintf("app: %s\nlog_format: console\nmetrics: {sink: none}\nformat: combined\n"+
		"processors:\n  histogram: {grace: 2m, linear: {width: 100B, max: 10KB}}\n", app))
	replay(t, getenv, "--config", cfg, zaker)

	raw, err := os.ReadFile(zaker)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := records.NewDecoder(records.FormatCombined)
	if err != nil {
		t.Fatal(err)
	}
	var all []records.Record
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var r records.Record
		if dec.Decode(bytes.Clone(sc.Bytes()), &r) == nil {
			all = append(all, r)
		}
	}
	t0 := slices.MinFunc(all, func(a, b records.Record) int { return a.Time.Compare(b.Time) }).Time.Truncate(time.Minute)
	// Periods: the whole log, and ten minutes in the middle.
	for _, period := range [][2]time.Time{{t0, t0.Add(time.Hour)}, {t0.Add(10 * time.Minute), t0.Add(20 * time.Minute)}} {
		from, to := period[0], period[1]
		want := make([]int64, 101)
		var sizes []int64
		for _, r := range all {
			if r.Time.Before(from) || !r.Time.Before(to) {
				continue
			}
			b := max(r.Bytes, 0)
			want[min(b/100, 100)]++
			sizes = append(sizes, b)
		}
		slices.Sort(sizes)
		var stdout, stderr bytes.Buffer
		args := []string{"query", "histogram", "--app", app, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--json"}
		if err := run(t.Context(), args, getenv, &stdout, &stderr); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, stderr.String())
		}
		var got struct {
			Windows int     `json:"windows"`
			Counts  []int64 `json:"counts"`
			Pcts    []struct {
				P        float64 `json:"p"`
				Lo, Hi   int64
				Estimate int64 `json:"estimate"`
			} `json:"percentiles"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
			t.Fatalf("%q: %v", stdout.String(), err)
		}
		if !slices.Equal(got.Counts, want) {
			t.Errorf("%s - %s: counts\n got %v\nwant %v", from, to, got.Counts, want)
		}
		if len(got.Pcts) != 3 {
			t.Fatalf("percentiles %+v", got.Pcts)
		}
		for _, p := range got.Pcts {
			exact := sizes[int(math.Ceil(p.P*float64(len(sizes))))-1]
			if exact < p.Lo || (p.Hi >= 0 && exact > p.Hi) {
				t.Errorf("%s - %s: p%g: exact %d outside the bucket [%d, %d]", from, to, 100*p.P, exact, p.Lo, p.Hi)
			}
		}
		t.Logf("%s - %s: %d windows, %d responses; percentiles %+v", from, to, got.Windows, len(sizes), got.Pcts)
	}

	// The text form: percentiles and a bar chart.
	var stdout, stderr bytes.Buffer
	args := []string{"query", "histogram", "--app", app, "--from", t0.Format(time.RFC3339), "--to", t0.Add(time.Hour).Format(time.RFC3339), "--host", "-"}
	if err := run(t.Context(), args, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	for _, want := range []string{"host \"-\"", "p50 ", "p90 ", "p99 ", "0-99 B", "##########"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, stdout.String())
		}
	}
	t.Logf("query histogram --from --to:\n%s", stdout.String())
}
