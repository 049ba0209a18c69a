package consumer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/processors/histogram"
	"github.com/shardwatch/shardwatch/pkg/processors/window"
)

func TestParseReplayArgs(t *testing.T) {
	tests := []struct {
		args    []string
		want    replayFlags
		wantErr string
	}{
		{args: []string{"a.log"}, want: replayFlags{batch: 500, files: []string{"a.log"}}},
		{
			args: []string{"--config", "c.yaml", "--batch=50", "a.log", "-format", "combined", "b.log"},
			want: replayFlags{batch: 50, files: []string{"a.log", "b.log"}, run: []string{"--config", "c.yaml", "--format", "combined"}},
		},
		{
			args: []string{"--app=x", "--batch", "7", "--", "--odd-name.log"},
			want: replayFlags{batch: 7, files: []string{"--odd-name.log"}, run: []string{"--app", "x"}},
		},
		{args: []string{"--batch", "0", "a"}, wantErr: "replay: --batch: want 1 to 10000 lines, got \"0\""},
		{args: []string{"a.log", "--config"}, wantErr: "replay: flag --config needs a value"},
		{args: []string{"-h"}, wantErr: errHelpRequested.Error()},
	}
	for _, tt := range tests {
		got, err := parseReplayArgs(tt.args)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("parseReplayArgs(%q) error = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseReplayArgs(%q): %v", tt.args, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(replayFlags{})); diff != "" {
			t.Errorf("parseReplayArgs(%q) (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestReplayUsageErrors(t *testing.T) {
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"replay", "--config", "x.yaml"}, noEnv, &stderr, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no input files") {
		t.Errorf("replay without files: %v", err)
	}
	err = run(t.Context(), []string{"replay", "a.log", "dir/a.log"}, noEnv, &stderr, &stderr)
	if err == nil || !strings.Contains(err.Error(), "would both be shard replay-a.log") {
		t.Errorf("replay of two files with one name: %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, "app: a\n")
	err = run(t.Context(), []string{"replay", "--config", cfg, "a.log"}, noEnv, &stderr, &stderr)
	if err == nil || !strings.Contains(err.Error(), "processors: none configured") {
		t.Errorf("replay without processors: %v", err)
	}
}

// stackEnv points this process's AWS SDK at the local stack (replay and
// query load the default SDK configuration, as on AWS) and returns a
// getenv for run.
func stackEnv(t *testing.T) func(string) string {
	t.Helper()
	for _, kv := range testenv.Environ(t) {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v)
		}
	}
	return os.Getenv
}

// replayTables creates the tables a replay with these processors writes.
func replayTables(t *testing.T, app string, orders bool) {
	t.Helper()
	testenv.CreateTable(t, app+"-results", "pk", "sk")
	testenv.CreateTable(t, app+"-deadletter", "pk", "sk")
	if orders {
		testenv.CreateTable(t, app+"-orders", "pk", "sk")
	}
}

func replay(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), append([]string{"replay"}, args...), getenv, &stdout, &stderr); err != nil {
		t.Fatalf("consumer replay %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stderr.String()
}

// zakerWindows counts the Zaker log offline, per UTC minute, into the
// default buckets, with its own parsing (not pkg/records): the bracketed
// time and the response size after the status code.
func zakerWindows(t *testing.T, path string) map[time.Time][]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`\[([^\]]+)\] "[^"]*" \d{3} (\d+|-) `)
	edges := []int64{0, 1 << 10, 10 << 10, 100 << 10, 1 << 20, 10 << 20}
	out := map[time.Time][]int64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("offline count: line %d does not parse: %.200s", n+1, sc.Text())
		}
		n++
		ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[1])
		if err != nil {
			t.Fatal(err)
		}
		size := int64(0)
		if m[2] != "-" {
			size, _ = strconv.ParseInt(m[2], 10, 64)
		}
		b := len(edges)
		for i, e := range edges {
			if size <= e {
				b = i
				break
			}
		}
		w := ts.UTC().Truncate(time.Minute)
		if out[w] == nil {
			out[w] = make([]int64, len(edges)+1)
		}
		out[w][b]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 10000 {
		t.Fatalf("offline count parsed %d lines, want 10000", n)
	}
	return out
}

// TestReplayHistogramZaker is the histogram acceptance test: `consumer
// replay` of the Zaker log writes per-window global histograms equal to an
// offline count, `consumer query histogram` reads them back, and a second
// replay of the same file changes nothing.
func TestReplayHistogramZaker(t *testing.T) {
	zaker := testenv.SharedData(t, "access/zaker-access-10k.log")
	getenv := stackEnv(t)
	app := testenv.Name(t, "hist")
	replayTables(t, app, false)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "replay.yaml")
	// The log is not strictly ordered; a 2 minute grace keeps every record
	// in its window, so the offline count of every line applies.
	writeFile(t, cfg, fmt.Sprintf("app: %s\nlog_format: console\nmetrics: {sink: none}\nformat: combined\nprocessors:\n  histogram: {grace: 2m}\n", app))
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"query", "histogram", "--app", app}, getenv, &stdout, &stderr); err != nil ||
		!strings.Contains(stdout.String(), "no histogram results in "+app+"-results") {
		t.Errorf("query histogram before any replay: %v, %q", err, stdout.String())
	}
	out := replay(t, getenv, "--config", cfg, zaker)
	if !strings.Contains(out, "10000 lines, 10000 records, 0 dead-lettered") {
		t.Errorf("replay summary: %s", out)
	}

	want := zakerWindows(t, zaker)
	ddb := testenv.DynamoDB(t)
	got := storedHistograms(t, ddb, app+"-results")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("histogram counts per window (-offline +replay):\n%s", diff)
	}
	if len(got) < 40 {
		t.Errorf("%d windows; the log spans 41 minutes", len(got))
	}

	// Read back through the CLI: the newest window, as JSON.
	stdout.Reset()
	if err := run(t.Context(), []string{"query", "histogram", "--app", app, "--last", "1", "--json"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("query histogram: %v\n%s", err, stderr.String())
	}
	var shown struct {
		Start time.Time `json:"window_start"`
		Final bool      `json:"final"`
		Total struct {
			Counts []int64 `json:"counts"`
		} `json:"total"`
		Largest []struct{ Bytes int64 } `json:"largest"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &shown); err != nil {
		t.Fatalf("query output %q: %v", stdout.String(), err)
	}
	newest := slices.MaxFunc(keysOf(want), time.Time.Compare)
	if !shown.Start.Equal(newest) || !shown.Final || !slices.Equal(shown.Total.Counts, want[newest]) || len(shown.Largest) != 10 {
		t.Errorf("query histogram --last 1 = %+v; want final window %s with counts %v and 10 largest", shown, newest, want[newest])
	}
	stdout.Reset()
	if err := run(t.Context(), []string{"query", "histogram", "--app", app, "--window", newest.Add(30 * time.Second).Format(time.RFC3339), "--host", "-"},
		getenv, &stdout, &stderr); err != nil {
		t.Fatalf("query histogram --window: %v", err)
	}
	if !strings.Contains(stdout.String(), "window "+window.FormatTime(newest)) || !strings.Contains(stdout.String(), "largest responses by path:") {
		t.Errorf("query histogram --window output:\n%s", stdout.String())
	}

	// The same file again: the cursor marks everything as counted.
	replay(t, getenv, "--config", cfg, zaker)
	if diff := cmp.Diff(want, storedHistograms(t, ddb, app+"-results")); diff != "" {
		t.Errorf("after a second replay (-offline +stored):\n%s", diff)
	}
}

func keysOf[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// storedHistograms reads every final global histogram item of the table:
// window start -> total counts per bucket.
func storedHistograms(t *testing.T, ddb *dynamodb.Client, table string) map[time.Time][]int64 {
	t.Helper()
	out := map[time.Time][]int64{}
	p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if sk, _ := window.GetStr(it, window.AttrSK); sk != window.GlobalSK {
				continue
			}
			g, err := histogram.ParseGlobal(it)
			if err != nil {
				t.Fatal(err)
			}
			if final, _ := window.GetBool(it, window.AttrFinal); !final || g.Merged != 1 {
				t.Errorf("window %s: global final=%t merged=%d, want a final merge of the one replay shard", g.Start, final, g.Merged)
			}
			out[g.Start] = g.Total.Counts
		}
	}
	return out
}

// ordersSubset writes the header and the first n data lines of the
// December 2010 orders (all of them when n <= 0) to dir/name and returns
// the path and the number of data lines.
func ordersSubset(t *testing.T, dir, name string, n int) (string, int) {
	t.Helper()
	b, err := os.ReadFile(testenv.SharedData(t, "orders/online-retail-2010-12.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if n > 0 && n+1 < len(lines) {
		lines = lines[:n+1]
	}
	p := filepath.Join(dir, name)
	writeFile(t, p, strings.Join(lines, "\n")+"\n")
	return p, len(lines) - 1
}

// TestReplayOrdersTwice is the archive acceptance test: replaying the
// December 2010 orders twice, the second time as another file (another
// shard, other positions), leaves exactly one item per order line. make
// test replays the first 10,000 lines (180 of which repeat an identical
// line of their invoice) in about 4 s; SHARDWATCH_FULL_REPLAY=1 replays
// all 42,481 (measured 38 s for the test, 6-10 s per replay, against
// DynamoDB Local on the shared 2-core machine).
func TestReplayOrdersTwice(t *testing.T) {
	n := 10_000
	if os.Getenv("SHARDWATCH_FULL_REPLAY") == "1" {
		n = 0
	}
	dir := t.TempDir()
	first, lines := ordersSubset(t, dir, "orders.csv", n)
	again, _ := ordersSubset(t, dir, "orders-again.csv", n)
	getenv := stackEnv(t)
	app := testenv.Name(t, "orders")
	replayTables(t, app, true)
	cfg := filepath.Join(dir, "replay.yaml")
	writeFile(t, cfg, fmt.Sprintf("app: %s\nlog_format: console\nmetrics: {sink: none}\nformat: orders-csv\nprocessors:\n  orderarchive: {}\n", app))

	start := time.Now()
	out := replay(t, getenv, "--config", cfg, first)
	t.Logf("first replay of %d order lines: %s", lines, time.Since(start).Round(time.Millisecond))
	if want := fmt.Sprintf("%d records, 0 dead-lettered, 1 skipped", lines); !strings.Contains(out, want) {
		t.Errorf("replay summary %q; want %q", out, want)
	}
	ddb := testenv.DynamoDB(t)
	if got := countItems(t, ddb, app+"-orders"); got != lines {
		t.Errorf("after one replay: %d items, want one per order line (%d)", got, lines)
	}
	replay(t, getenv, "--config", cfg, "--batch", "137", again)
	if got := countItems(t, ddb, app+"-orders"); got != lines {
		t.Errorf("after two replays: %d items, want one per order line (%d)", got, lines)
	}

	// A customer's orders, newest first, as the file has them.
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"query", "orders", "--app", app, "--customer", "17850", "--limit", "1000", "--json"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("query orders: %v\n%s", err, stderr.String())
	}
	var got []string
	for l := range strings.SplitSeq(strings.TrimSpace(stdout.String()), "\n") {
		var o struct {
			Date    time.Time `json:"invoice_date"`
			Invoice string    `json:"invoice"`
			Stock   string    `json:"stock_code"`
		}
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("query output line %q: %v", l, err)
		}
		got = append(got, o.Date.Format("2006-01-02 15:04:05")+" "+o.Invoice+" "+o.Stock)
	}
	want := customerLines(t, first, "17850.0")
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("query orders --customer 17850: %d lines, the file has %d", len(got), len(want))
	}
	if !slices.IsSortedFunc(got, func(a, b string) int { return strings.Compare(b[:19], a[:19]) }) {
		t.Errorf("orders not newest first:\n%s", strings.Join(got, "\n"))
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("customer 17850's order lines (-file +query):\n%s", diff)
	}
}

// customerLines returns "date invoice stock" of the file's lines of one
// customer, sorted. The data has no commas inside quotes in these
// columns' neighbours for this customer, so a plain split is enough.
func customerLines(t *testing.T, path, customer string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(l, ",")
		if i == 0 || len(f) != 8 || f[6] != customer {
			continue
		}
		out = append(out, f[4]+" "+f[0]+" "+f[1])
	}
	slices.Sort(out)
	return out
}

func countItems(t *testing.T, ddb *dynamodb.Client, table string) int {
	t.Helper()
	n := 0
	p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.WithoutCancel(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		n += int(page.Count)
	}
	return n
}

// TestReplayResumesAfterInterrupt interrupts a replay (as Ctrl-C would)
// a few windows into the file and runs it again: the windows end
// up exactly as the offline count, nothing lost or counted twice,
// wherever the interrupt landed.
func TestReplayResumesAfterInterrupt(t *testing.T) {
	zaker := testenv.SharedData(t, "access/zaker-access-10k.log")
	getenv := stackEnv(t)
	app := testenv.Name(t, "resume")
	replayTables(t, app, false)
	cfg := filepath.Join(t.TempDir(), "replay.yaml")
	writeFile(t, cfg, fmt.Sprintf("app: %s\nlog_format: console\nmetrics: {sink: none}\nformat: combined\nprocessors:\n  histogram: {grace: 2m}\n", app))
	ddb := testenv.DynamoDB(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"replay", "--config", cfg, "--batch", "50", zaker}, getenv, &stderr, &stderr)
	}()
	var err error
	deadline := time.Now().Add(30 * time.Second)
wait:
	for {
		select {
		case err = <-done:
			break wait
		default:
		}
		// A cursor and partials of a few windows: well into the file.
		if countItems(t, ddb, app+"-results") >= 6 {
			cancel()
			err = <-done
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("no result item within 30s")
		}
		time.Sleep(10 * time.Millisecond) // polling DynamoDB Local, not synchronising goroutines
	}
	switch {
	case errors.Is(err, context.Canceled):
		t.Logf("interrupted: %v", err)
	case err != nil:
		t.Fatalf("first replay: %v\n%s", err, stderr.String())
	default:
		t.Log("the replay finished before the interrupt; resume not exercised this time")
	}
	replay(t, getenv, "--config", cfg, zaker)
	if diff := cmp.Diff(zakerWindows(t, zaker), storedHistograms(t, ddb, app+"-results")); diff != "" {
		t.Errorf("after an interrupted and a complete replay (-offline +stored):\n%s", diff)
	}
}
