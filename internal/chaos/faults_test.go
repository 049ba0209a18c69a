package chaos

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardwatch/shardwatch/internal/faultproxy"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

func hits(n int, tag string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"ip":"10.9.%d.%d","user_agent":"Mozilla/5.0 test","path":"/%s/%d","status":200,"bytes":%d,"timestamp":%q}`,
			i%200, i%7, tag, i, 100+i, time.Now().UTC().Format(time.RFC3339Nano))
	}
	return out
}

// Throttled, failing and slow Kinesis and DynamoDB calls: the workers back
// off and keep every shard moving; the engine never gives a shard up.
func TestThrottledFleetKeepsEveryShard(t *testing.T) {
	integration(t)
	t.Parallel()
	ep := testenv.LocalEndpoints()
	kp, kinesisURL := proxy(t, ep.Kinesis, 11, []faultproxy.Rule{
		{Service: "Kinesis", Operations: []string{"GetRecords", "GetShardIterator"}, Kind: faultproxy.Throughput, Rate: 0.3},
		{Service: "Kinesis", Operations: []string{"GetRecords"}, Kind: faultproxy.KMSThrottling, Rate: 0.05},
		{Service: "Kinesis", Kind: faultproxy.Internal, Rate: 0.05},
		{Service: "Kinesis", Kind: faultproxy.Slow, Rate: 0.1, Delay: 300 * time.Millisecond},
	})
	dp, dynamoURL := proxy(t, ep.DynamoDB, 12, []faultproxy.Rule{
		{Service: "DynamoDB", Kind: faultproxy.Throughput, Rate: 0.05},
		{Service: "DynamoDB", Kind: faultproxy.Throttling, Rate: 0.02},
		{Service: "DynamoDB", Kind: faultproxy.Internal, Rate: 0.02},
		{Service: "DynamoDB", Kind: faultproxy.Slow, Rate: 0.05, Delay: 200 * time.Millisecond},
	})
	// Small batches: the run lasts long enough for hundreds of faults.
	// Processors make DynamoDB faults hit the result sinks too.
	f := newFleetOn(t, 4, kinesisURL, dynamoURL, "max_records: 20\nprocessors:\n  topn: {}\n  counters: {}\n")
	var ws []*Proc
	for _, slot := range []string{"w1", "w2"} {
		p, err := f.fleet.Start(slot)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, p)
	}
	want := f.put(hits(3000, "throttle"))
	start := time.Now()
	got := f.waitProcessed(want, 120*time.Second)
	t.Logf("3000 records on 4 shards through the fault proxies in %s; kinesis %+v; dynamodb %+v",
		time.Since(start).Round(100*time.Millisecond), kp.Stats(), dp.Stats())
	if kp.Stats().Total() < 50 || dp.Stats().Total() < 10 {
		t.Fatalf("too few faults injected to mean anything: kinesis %d, dynamodb %d", kp.Stats().Total(), dp.Stats().Total())
	}
	dups := 0
	for _, p := range want {
		dups += got[p] - 1
	}
	logs := f.logs()
	// The engine logs this when a shard consumer exits (and its lease is
	// released): throttling must never cause it. An exit because the lease
	// was handed over (a balancing claim) or lost is not a throttle give-up.
	if n := gaveUp(logs); n > 0 {
		t.Errorf("a shard consumer gave up %d times under throttling", n)
	}
	retried := regexp.MustCompile(`shardwatch_kinesis_read_retries_total\{[^}]*\} [1-9]`)
	found := false
	for _, p := range ws {
		if !p.Alive() {
			t.Errorf("worker %s exited: %v", p.ID, p.err)
		}
		found = found || retried.MatchString(metricsText(t, p))
	}
	if !found {
		t.Error("no worker reports shardwatch_kinesis_read_retries_total > 0")
	}
	t.Logf("duplicates: %d", dups)
}

// Bad input goes to the dead-letter sink with its reason; nothing crashes
// or blocks, good records around it are processed, and neither payloads
// nor credentials reach the logs.
func TestBadInputIsDeadLettered(t *testing.T) {
	integration(t)
	t.Parallel()
	ep := testenv.LocalEndpoints()
	f := newFleetOn(t, 2, ep.Kinesis, ep.DynamoDB, "")
	const secret = "chaos-test-secret-7f3a9c"
	f.fleet.Env = append(f.fleet.Env, "AWS_SECRET_ACCESS_KEY="+secret)
	w, err := f.fleet.Start("w1")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "PAYLOADMARKER"
	big := bytes.Repeat([]byte(marker+" "), (1<<20-1024)/len(marker+" "))
	bad := map[string][]byte{
		"garbage":       {0x00, 0xff, 0xfe, 0x01, 0x02, 'P', 'A', 'Y'},
		"truncated":     []byte(`{"ip":"10.0.0.1","path":"/` + marker),
		"oversize":      append([]byte(`{"ip":"1.2.3.4","path":"`), big...),
		"invalid utf-8": []byte(`{"ip":"10.0.0.1","user_agent":"` + marker + "\xff\xfe" + `","path":"/x","status":200,"bytes":1,"timestamp":"2026-01-01T00:00:00Z"}`),
		"wrong format":  []byte("hello " + marker + " this is not a log line"),
		"empty json":    []byte(`{}`),
	}
	// Malformed KPL aggregates: valid magic and digest, broken content.
	body := []byte{0x0a, 0x01, 'a', 0x1a, 0x05, 0x08, 0x07, 0x1a, 0x01, 'x'} // key table ["a"], record with key index 7
	sum := md5.Sum(body)
	bad["kpl bad key index"] = append(append([]byte{0xF3, 0x89, 0x9A, 0xC2}, body...), sum[:]...)
	trunc := body[:len(body)-2]
	sum = md5.Sum(trunc)
	bad["kpl truncated"] = append(append([]byte{0xF3, 0x89, 0x9A, 0xC2}, trunc...), sum[:]...)

	r := rand.New(rand.NewPCG(5, 6))
	var fuzz [][]byte
	for range 100 {
		b := make([]byte, 1+r.IntN(300))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		if r.IntN(2) == 0 {
			b = append([]byte(`{"ip":"`), b...) // looks like JSON, is not
		}
		fuzz = append(fuzz, b)
	}
	var names []string
	var data [][]byte
	data = append(data, hits(20, "before")...)
	for name, b := range bad {
		names = append(names, name)
		data = append(data, b)
	}
	data = append(data, fuzz...)
	data = append(data, hits(20, "after")...)
	pos := f.put(data)
	f.waitProcessed(pos, 90*time.Second)
	if !w.Alive() {
		t.Fatalf("worker exited: %v", w.err)
	}

	dls := f.deadLetters()
	bySeq := map[string]map[string]any{}
	for _, d := range dls {
		bySeq[d["sequence"].(string)] = d
	}
	for i, name := range names {
		p := pos[20+i]
		d := bySeq[p.Seq]
		if d == nil {
			t.Errorf("%s: not dead-lettered", name)
			continue
		}
		reason, _ := d["reason"].(string)
		raw, _ := base64.StdEncoding.DecodeString(fmt.Sprint(d["data"]))
		switch {
		case reason == "":
			t.Errorf("%s: dead letter without a reason", name)
		case strings.HasPrefix(name, "kpl") && !strings.HasPrefix(reason, "kpl: "):
			t.Errorf("%s: reason %q; want kpl: ...", name, reason)
		case !bytes.Equal(raw, bad[name]):
			t.Errorf("%s: dead letter holds %d bytes, not the original %d", name, len(raw), len(bad[name]))
		}
	}
	fuzzDL := 0
	for _, p := range pos[20+len(names) : 20+len(names)+len(fuzz)] {
		if bySeq[p.Seq] != nil {
			fuzzDL++
		}
	}
	if fuzzDL < len(fuzz)*9/10 {
		t.Errorf("only %d of %d fuzzed records dead-lettered", fuzzDL, len(fuzz))
	}
	for _, p := range append(pos[:20:20], pos[len(pos)-20:]...) {
		if bySeq[p.Seq] != nil {
			t.Errorf("good record %s dead-lettered: %v", p.Seq, bySeq[p.Seq]["reason"])
		}
	}
	kplDL := 0
	for _, m := range regexp.MustCompile(`shardwatch_dead_lettered_total\{[^}]*class="kpl"[^}]*\} (\d+)`).FindAllStringSubmatch(metricsText(t, w), -1) {
		n, _ := strconv.Atoi(m[1])
		kplDL += n
	}
	if kplDL != 2 {
		t.Errorf("dead_lettered{class=kpl} sums to %d in /metrics; want 2", kplDL)
	}
	logs := f.logs()
	for _, forbidden := range []string{marker, secret} {
		if strings.Contains(logs, forbidden) {
			t.Errorf("worker log contains %q (a payload or a credential)", forbidden)
		}
	}
	t.Logf("%d dead letters (%d of %d fuzzed records)", len(dls), fuzzDL, len(fuzz))
}

// A bad processor setting stops the worker at start with the field named.
func TestBadProcessorConfigFailsAtStart(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, processors, field string }{
		{"topn unknown key", "topn:\n    windw: 60s", "processors.topn"},
		{"topn window", "topn:\n    window: 0s", "processors.topn.window"},
		{"counters grace", "counters:\n    grace: -1s", "processors.counters.grace"},
		{"orderflood threshold", "orderflood:\n    threshold: -3", "processors.orderflood.threshold"},
		{"orderflood unknown key", "orderflood:\n    thresold: 3", "thresold"},
		{"botdetect unknown key", "botdetect:\n    nosuch: 1", "nosuch"},
		{"hrmetrics unknown key", "hrmetrics:\n    nosuch: 1", "nosuch"},
		{"not a mapping", "topn: [1, 2]", "processors.topn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			body := "stream: s\napp: a\nprocessors:\n  " + tc.processors + "\n"
			if err := writeFile(p, body); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), consumerBin, "run", "--config", p)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "AWS_ENDPOINT_URL=http://127.0.0.1:1"}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatal("consumer started; want a start-up error")
			}
			if !strings.Contains(string(out), tc.field) {
				t.Errorf("error output %q does not name %q", out, tc.field)
			}
		})
	}
}

// gaveUp counts shard consumers the engine stopped for a reason other
// than losing the lease.
func gaveUp(logs string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "Error in getRecords") && !strings.Contains(l, "lease lost") {
			n++
		}
	}
	return n
}
