package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/putter"
	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/processors"
)

// browserDeadline bounds waiting for the page to show the expected values
// once the records are in the stream.
const browserDeadline = 45 * time.Second

// chromium returns the path of a headless-capable Chromium, installing
// Debian's chromium package through scripts/browser-deps when it is
// missing. Without one the test skips loudly, except in CI (CI=true),
// where a skipped browser test would hide a broken page.
func chromium(t *testing.T, root string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), filepath.Join(root, "scripts", "browser-deps"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return strings.TrimSpace(string(out))
	}
	msg := fmt.Sprintf("NO BROWSER: headless Chromium is not installed and scripts/browser-deps could not install it (%v): %s",
		err, strings.TrimSpace(stderr.String()))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("!!! SKIPPING THE DASHBOARD BROWSER TEST !!! " + msg)
	return ""
}

// proc is a child process whose output is kept for the failure report.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.out.String()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

// start runs bin with args; the process gets SIGTERM at cleanup (then
// SIGKILL after 15 s) and its output is logged when the test failed.
func start(t *testing.T, env []string, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// pageState is what the browser test reads from the page: the data the
// charts plot (uPlot's own arrays) and the text of the tables and KPIs.
type pageState struct {
	Updates  int                      `json:"updates"`
	Errors   map[string]string        `json:"errors"`
	CSP      []string                 `json:"csp"`
	Script   []string                 `json:"script"`
	Charts   map[string][2][]*float64 `json:"charts"`
	Top      [][]string               `json:"top"`
	Bots     [][]string               `json:"bots"`
	Alarms   [][]string               `json:"alarms"`
	BotShare string                   `json:"botShare"`
	TopFoot  string                   `json:"topFoot"`
}

const readPage = `(() => {
  const s = window.shardwatch;
  if (!s || !s.charts || !s.charts.hour) return null;
  const rows = (id) => Array.from(document.querySelectorAll('#' + id + ' tbody tr:not(.empty)'))
    .map((tr) => Array.from(tr.cells).map((td) => td.textContent));
  const charts = {};
  for (const r of ['second', 'minute', 'hour']) {
    const d = s.charts[r].data;
    charts[r] = [Array.from(d[0] || []), Array.from(d[1] || [])];
  }
  return {
    updates: s.updates, errors: s.errors, csp: s.cspViolations, script: s.scriptErrors, charts: charts,
    top: rows('top-table'), bots: rows('bots-table'), alarms: rows('alarms-table'),
    botShare: document.getElementById('bot-share').textContent,
    topFoot: document.getElementById('top-foot').textContent,
  };
})()`

// TestBrowserDashboard is the end-to-end check: a real worker (the
// consumer binary) consumes a kinesalite stream the test produces to with
// the putter, writes its results to DynamoDB Local, `consumer dashboard`
// serves them, and headless Chromium must show the expected per-second,
// per-minute and per-hour counts, top talkers, bot share and alarm. A
// screenshot is saved under .cache/artifacts/dashboard/.
func TestBrowserDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("browser end-to-end test: skipped with -short")
	}
	root := testenv.RepoRoot(t)
	env := testenv.Environ(t) // skips or fails first when the stack is missing
	browser := chromium(t, root)
	ctx := t.Context()

	// The consumer binary, built like the fleet tests do (cached by go build).
	bin := filepath.Join(t.TempDir(), "consumer")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/shardwatch/shardwatch/cmd/consumer")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build consumer: %v\n%s", err, out)
	}

	// Stream, result tables and the lease table the worker creates.
	app := testenv.Name(t, "dashe2e")
	stream := app + "-traffic"
	tables := processors.TablesFor(app)
	testenv.CreateStream(t, stream, 2)
	testenv.CreateTable(t, tables.Counters, "event", "bucket")
	testenv.CreateTable(t, tables.Results, "pk", "sk")
	testenv.CreateTable(t, tables.Alarms, "alarm", "period")
	t.Cleanup(func() { testenv.DeleteTable(t, app) })

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "consumer.yaml")
	conf := fmt.Sprintf(`stream: %s
app: %s
initial_position: TRIM_HORIZON
format: auto
failover_time: 6s
poll_interval: 200ms
shutdown_timeout: 5s
log_format: json
deadletter: {sink: file, path: %s}
metrics: {sink: none}
processors:
%s`, stream, app, filepath.Join(dir, "deadletter.jsonl"), indent(processorConfig, "  "))
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, env, "worker", bin, "run", "--config", cfgPath, "--worker-id", "e2e-worker", "--ops-addr", freePort(t))
	dash := start(t, env, "dashboard", bin, "dashboard", "--app", app, "--addr", "127.0.0.1:0",
		"--topn-window", "10s", "--bot-window", "10s", "--histogram-window", "10s", "--visitors-window", "10s",
		"--refresh", "500ms")
	url := dashboardURL(t, dash)

	// Produce once the worker holds both shards, so the records' event
	// times (the last 10-20 s) stay inside the per-second chart's minute.
	waitLeases(t, app, 2)
	base := time.Now().UTC().Truncate(10 * time.Second).Add(-10 * time.Second)
	produce(t, stream, fixtureRecords(base, false))
	t.Logf("produced 55 hits and 6 orders with event times %s..%s", base.Format(time.TimeOnly), base.Add(10*time.Second).Format(time.TimeOnly))

	// The browser: Debian's Chromium, headless, no network but loopback.
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")),
		chromedp.WindowSize(1400, 1250),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}

	want := expectedPage(base)
	var got pageState
	var diff string
	deadline := time.Now().Add(browserDeadline)
	for {
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[*pageState](readPage))
		if err != nil {
			t.Fatalf("read page: %v", err)
		}
		if raw != nil {
			got = *raw
			if diff = cmp.Diff(want, summarize(got, base)); diff == "" {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond): // the check's poll interval
		}
	}
	shot := screenshot(t, bctx, root, "browser-e2e.png")
	if diff != "" {
		t.Fatalf("page never showed the expected values within %s (-want +got):\n%s\nscreenshot: %s", browserDeadline, diff, shot)
	}
	if len(got.Errors) > 0 || len(got.CSP) > 0 || len(got.Script) > 0 {
		t.Errorf("page problems: API errors %v, CSP violations %v, script errors %v", got.Errors, got.CSP, got.Script)
	}
	if got.Updates < 1 {
		t.Errorf("page never refreshed")
	}

	// The window panels against the tables, read here independently.
	results := tables.Results
	hist := globalItem(t, results, "histogram#10s#"+base.Format(time.RFC3339))
	vis := globalItem(t, results, "visitors#10s#"+base.Format(time.RFC3339))
	wantPanels := map[string]string{
		"hist":     fmt.Sprintf("%s responses", attrN(hist, "requests")),
		"visitors": fmt.Sprintf("%s hits;", attrN(vis, "hits")),
		"window":   "window " + base.Format(time.TimeOnly) + "–" + base.Add(10*time.Second).Format(time.TimeOnly) + " UTC",
		"edges":    "no results: the cloudfront-bytes processor is not configured",
		"anomaly":  "no results: the anomaly processor is not configured",
	}
	pollPanels(t, bctx, wantPanels)
	screenshot(t, bctx, root, "dashboard-live.png")

	// Old data: the fixture's tables (traffic of 2026-11-22 09:41) on the
	// wall clock. Every panel still shows its newest window and its age.
	oldApp := writeFixture(t)
	oldDash := start(t, env, "dashboard-old", bin, "dashboard", "--app", oldApp, "--addr", "127.0.0.1:0",
		"--topn-window", "10s", "--bot-window", "10s", "--histogram-window", "10s", "--visitors-window", "10s",
		"--refresh", "500ms")
	if err := chromedp.Do(bctx, chromedp.Navigate(dashboardURL(t, oldDash)+"?events=hit,order&hours=24")); err != nil {
		t.Fatalf("open old dashboard: %v", err)
	}
	pollPanels(t, bctx, map[string]string{
		"top":    "window 2026-11-22 09:41:40–09:41:50 UTC",
		"bots":   "window 2026-11-22 09:41:",
		"hist":   "window 2026-11-22 09:41:",
		"age":    " ago",
		"alarms": "order-flood",
		"events": "hit,order",
		"note":   "hit: none in this span; newest bucket 2026-11-22 09:41",
	})
	screenshot(t, bctx, root, "dashboard-old.png")
}

const readPanels = `(() => {
  const t = (id) => { const e = document.getElementById(id); return e ? e.textContent : ''; };
  const s = window.shardwatch;
  return {
    hist: t('hist-foot') + ' | ' + t('hist-window'), visitors: t('visitors-foot'),
    window: t('top-window') + ' | ' + t('bots-window') + ' | ' + t('visitors-window'),
    edges: t('edges-window'), anomaly: t('anomaly-window'),
    top: t('top-window'), bots: t('bots-window'), age: t('top-window'),
    alarms: t('alarms-table'), events: new URLSearchParams(location.search).get('events') || '',
    note: t('note-minute'), table: t('counters-grid'),
    errors: JSON.stringify(s ? s.errors : {}),
  };
})()`

// pollPanels waits until each panel's text contains its wanted part.
func pollPanels(t *testing.T, ctx context.Context, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(browserDeadline)
	var got map[string]string
	for {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](readPanels))
		if err != nil {
			t.Fatalf("read panels: %v", err)
		}
		got = raw
		missing := []string{}
		for k, w := range want {
			if !strings.Contains(got[k], w) {
				missing = append(missing, fmt.Sprintf("%s: want %q in %q", k, w, got[k]))
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("panels never showed the table values within %s:\n%s\n(API errors %s)", browserDeadline, strings.Join(missing, "\n"), got["errors"])
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// globalItem reads a window's global item straight from DynamoDB Local,
// waiting for it (the worker writes it when the window closes).
func globalItem(t *testing.T, table, pk string) map[string]types.AttributeValue {
	t.Helper()
	ddb := testenv.DynamoDB(t)
	deadline := time.Now().Add(browserDeadline)
	for {
		out, err := ddb.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "global"}}})
		if err == nil && out.Item != nil {
			if f, ok := out.Item["final"].(*types.AttributeValueMemberBOOL); ok && f.Value {
				return out.Item
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no final global item %s in %s within %s (last error %v)", pk, table, browserDeadline, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func attrN(it map[string]types.AttributeValue, name string) string {
	if n, ok := it[name].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return "?"
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	return b.String()
}

// dashboardURL reads the URL line `consumer dashboard` prints.
func dashboardURL(t *testing.T, p *proc) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(p.output()))
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "dashboard: http://"); ok {
				return "http://" + strings.TrimSpace(u)
			}
		}
		select {
		case <-p.done:
			t.Fatalf("consumer dashboard exited: %s", p.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("consumer dashboard printed no URL in 30 s: %s", p.output())
	return ""
}

// waitLeases polls the lease table until n shards are assigned.
func waitLeases(t *testing.T, table string, n int) {
	t.Helper()
	ddb := testenv.DynamoDB(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := ddb.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
		held := 0
		if err == nil {
			for _, it := range out.Items {
				if v, ok := it["AssignedTo"]; ok && v != nil {
					held++
				}
			}
		}
		if held >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker holds %d of %d leases after 60 s (last error: %v)", held, n, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// produce puts each shard's records with a partition key that lands on
// that shard's half of the hash key range (two shards split it evenly).
func produce(t *testing.T, stream string, recs [2][][]byte) {
	t.Helper()
	p, err := putter.New(testenv.Kinesis(t), putter.Config{Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	hashKeys := [2]string{"1", "340282366920938463463374607431768211455"} // low half, high half
	var entries []putter.Entry
	for s, list := range recs {
		for _, data := range list {
			entries = append(entries, putter.Entry{PartitionKey: "shard" + strconv.Itoa(s), ExplicitHashKey: hashKeys[s], Data: data})
		}
	}
	if res := p.Put(t.Context(), entries); res.FailedRecords() > 0 {
		t.Fatalf("put: %d records failed: %v", res.FailedRecords(), res.Failed[0].Err)
	}
}

// pageSummary is the part of the page the test compares.
type pageSummary struct {
	Second   map[string]float64 // non-zero points, by UTC time
	Minute   map[string]float64
	Hour     map[string]float64
	Top      [][]string // IP, requests, bytes
	BotShare string
	Bots     [][]string // IP, reasons, requests
	Alarm    []string   // alarm, orders >= threshold, threshold
	Foot     string
}

func expectedPage(base time.Time) pageSummary {
	sec := map[string]float64{}
	for s := range 10 {
		sec[base.Add(time.Duration(s)*time.Second).Format(time.TimeOnly)] = float64(s + 1)
	}
	return pageSummary{
		Second: sec,
		Minute: map[string]float64{base.Truncate(time.Minute).Format(time.TimeOnly): 55},
		Hour:   map[string]float64{base.Truncate(time.Hour).Format(time.TimeOnly): 55},
		Top: [][]string{
			{"198.51.100.1", "15", "1.50 KB"},
			{"198.51.100.2", "13", "2.60 KB"},
			{"198.51.100.3", "11", "3.30 KB"},
			{"198.51.100.4", "9", "3.60 KB"},
			{"198.51.100.5", "7", "3.50 KB"},
		},
		BotShare: "12.7%", // 7 of 55 requests with a Googlebot User-Agent
		Bots:     [][]string{{"198.51.100.5", "ua:crawlerdetect:Googlebot", "7"}},
		Alarm:    []string{"order-flood", "true", "5"},
		Foot:     "55 requests, 14.5 KB in the window from 2 shard(s); counts exact",
	}
}

func summarize(p pageState, base time.Time) pageSummary {
	var s pageSummary
	for name, dst := range map[string]*map[string]float64{"second": &s.Second, "minute": &s.Minute, "hour": &s.Hour} {
		*dst = map[string]float64{}
		c := p.Charts[name]
		for i := range c[0] {
			if i < len(c[1]) && c[0][i] != nil && c[1][i] != nil && *c[1][i] != 0 {
				(*dst)[time.Unix(int64(*c[0][i]), 0).UTC().Format(time.TimeOnly)] = *c[1][i]
			}
		}
	}
	for _, r := range p.Top {
		if len(r) == 5 {
			s.Top = append(s.Top, []string{r[1], r[2], r[3]})
		}
	}
	s.BotShare = p.BotShare
	s.Bots = p.Bots
	if len(p.Alarms) > 0 && len(p.Alarms[0]) == 9 {
		orders, _ := strconv.Atoi(strings.ReplaceAll(p.Alarms[0][2], ",", ""))
		threshold, _ := strconv.Atoi(p.Alarms[0][3])
		s.Alarm = []string{p.Alarms[0][1], strconv.FormatBool(orders >= threshold && threshold > 0), p.Alarms[0][3]}
	}
	s.Foot = p.TopFoot
	return s
}

// screenshot saves the page as .cache/artifacts/dashboard/browser-e2e.png
// (git-ignored) and returns the path.
func screenshot(t *testing.T, ctx context.Context, root, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return ""
	}
	dir := filepath.Join(root, ".cache", "artifacts", "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("screenshot: %v", err)
		return ""
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
		return ""
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return path
}
