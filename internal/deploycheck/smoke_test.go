package deploycheck

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/internal/faultproxy"
	"github.com/shardwatch/shardwatch/internal/ociimage"
	"github.com/shardwatch/shardwatch/internal/testenv"
	"github.com/shardwatch/shardwatch/pkg/records"
)

// The deploy smoke test runs what ECS runs: the consumer binary, started
// the way the image's entrypoint starts it, with exactly the container
// environment of the task definition (rendered from template.yaml for
// params.example.json, and read from taskdef.json) plus only the local
// stack's endpoints, region and dummy credentials. Generated traffic with
// order floods and malformed records then has to come out as results of
// every configured processor, an alarm on the topic, dead letters with
// their reason, the metrics the stack's alarms and dashboard watch, and
// only AWS calls the task role grants.
func TestDeployedTaskSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	testenv.Config(t) // fails (or skips with SHARDWATCH_SKIP_INTEGRATION) without a stack
	bins := buildSmokeBinaries(t)
	t.Run("template.yaml", func(t *testing.T) {
		app := testenv.Name(t, "deploy")
		stream := app + "-events"
		e := localEvaluator(t, map[string]string{"StreamName": stream, "AppName": app})
		c, err := TemplateContainer(e, "TaskDefinition")
		if err != nil {
			t.Fatal(err)
		}
		runSmoke(t, bins, e, c)
	})
	t.Run("taskdef.json", func(t *testing.T) {
		c, err := TaskDefContainer(readFile(t, deployFile(t, "taskdef.json")))
		if err != nil {
			t.Fatal(err)
		}
		// A user fills in their own stream, app and topic; this run points
		// them at its own resources. The file's names must follow the fleet
		// contract (topic APP-alarms) before they are replaced.
		appVar, streamVar, topicVar := config.EnvName("app"), config.EnvName("stream"), config.EnvName("alarms.topic_arn")
		if !strings.HasSuffix(c.Env[topicVar], ":"+c.Env[appVar]+"-alarms") {
			t.Fatalf("taskdef.json: %s=%q is not the APP-alarms topic of %s=%q", topicVar, c.Env[topicVar], appVar, c.Env[appVar])
		}
		app := testenv.Name(t, "deploy")
		stream := app + "-events"
		c.Env[appVar], c.Env[streamVar], c.Env[topicVar] = app, stream, testenv.TopicARN(app+"-alarms")
		runSmoke(t, bins, localEvaluator(t, map[string]string{"StreamName": stream, "AppName": app}), c)
	})
}

// localEvaluator renders the template for params.example.json in the
// local stack's account and region, so ARNs match what it creates.
func localEvaluator(t *testing.T, extra map[string]string) *Evaluator {
	t.Helper()
	tmpl, err := LoadTemplate(deployFile(t, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pseudo := maps.Clone(examplePseudo)
	pseudo["AWS::AccountId"], pseudo["AWS::Region"] = testenv.AccountID, testenv.Region
	e, err := NewEvaluator(tmpl, exampleParams(t, extra), pseudo)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type smokeBinaries struct{ consumer, producer string }

func buildSmokeBinaries(t *testing.T) smokeBinaries {
	t.Helper()
	dir := t.TempDir()
	b := smokeBinaries{consumer: filepath.Join(dir, "consumer"), producer: filepath.Join(dir, "producer")}
	// The image's binaries are static (CGO off); build them the same way.
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/consumer", "./cmd/producer")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return b
}

// smokeTimeout bounds every wait of one run; a healthy run needs about
// 30 s on a loaded 2-core machine.
const smokeTimeout = 3 * time.Minute

func runSmoke(t *testing.T, bins smokeBinaries, e *Evaluator, c Container) {
	ctx, cancel := context.WithTimeout(t.Context(), smokeTimeout)
	defer cancel()
	cfg := loadContainerConfig(t, c) // the worker's own view of its environment
	if len(cfg.ProcessorList()) == 0 {
		t.Fatal("the task's environment configures no processors")
	}
	if cfg.Metrics.Sink != "cloudwatch" || cfg.DeadLetter.Sink != "dynamodb" {
		t.Fatalf("metrics sink %q, dead-letter sink %q: the smoke test expects the deployed cloudwatch/dynamodb", cfg.Metrics.Sink, cfg.DeadLetter.Sink)
	}

	// The operator's side: local endpoints, behind recording proxies so the
	// test sees every AWS operation the worker calls, and a CloudWatch that
	// records PutMetricData (there is no local CloudWatch server).
	local := testenv.LocalEndpoints()
	rec := &opRecorder{}
	cw := &fakeCloudWatch{}
	cwSrv := httptest.NewServer(cw)
	t.Cleanup(cwSrv.Close)
	awsEnv := []string{
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=" + testenv.Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_KINESIS=" + rec.proxy(t, "kinesis", local.Kinesis),
		"AWS_ENDPOINT_URL_DYNAMODB=" + rec.proxy(t, "dynamodb", local.DynamoDB),
		"AWS_ENDPOINT_URL_SNS=" + rec.proxy(t, "sns", local.SNS),
		"AWS_ENDPOINT_URL_CLOUDWATCH=" + cwSrv.URL,
	}
	operatorEnv := append(slices.Clone(testenv.Environ(t)), "SHARDWATCH_SHARDS=2")

	// consumer setup, as the operator (or the stack) creates the resources.
	runCmd(ctx, t, operatorEnv, bins.consumer, "setup", "--app", cfg.App, "--stream", cfg.Stream)
	t.Cleanup(func() {
		testenv.DeleteStream(t, cfg.Stream)
		for _, tbl := range []string{cfg.Tables.Leases, cfg.Tables.Results, cfg.Tables.Counters, cfg.Tables.Alarms, cfg.Tables.DeadLetter, cfg.App + "-orders"} {
			testenv.DeleteTable(t, tbl)
		}
		testenv.DeleteTopic(t, cfg.Alarms.TopicARN)
	})
	queue := testenv.SubscribeQueue(t, cfg.Alarms.TopicARN)

	// The worker: the image's entrypoint, the container's environment.
	opsPort := portOf(t, cfg.OpsAddr)
	waitPortFree(ctx, t, opsPort)
	entry := ociimage.ShardwatchSpec(nil, "amd64", time.Time{}, "").Entrypoint
	var stdout, stderr lockedBuffer
	worker := exec.Command(bins.consumer, entry[1:]...)
	worker.Env = append(c.Environ(), awsEnv...)
	worker.Stdout, worker.Stderr = &stdout, &stderr
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- worker.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = worker.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("worker stderr (tail):\n%s", tail(stderr.String(), 4000))
		}
	}()

	healthz := "http://" + net.JoinHostPort("127.0.0.1", opsPort) + "/healthz"
	poll(ctx, t, "worker /healthz answers 200", exited, func() (bool, string) {
		resp, err := http.Get(healthz)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	// The container health check: the same binary, the container's env.
	runCmd(ctx, t, c.Environ(), bins.consumer, c.Command[2:]...)

	// Traffic: generated hits and orders with floods and malformed
	// records, 200 s of event time in the past sent 20 times faster than
	// real time, so 60 s windows close during the run.
	start := time.Now().Add(-210 * time.Second).Truncate(time.Minute)
	runCmd(ctx, t, operatorEnv, bins.producer, "generate", "--stream", cfg.Stream,
		"--rate", "40", "--duration", "200s", "--speedup", "20", "--seed", "7",
		"--start-time", start.Format(time.RFC3339), "--flood-every", "40s", "--flood-size", "45",
		"--malformed-share", "0.01", "--log-format", "json")

	truth := readStream(ctx, t, cfg.Stream)
	t.Logf("stream: %d records, %d orders, %d malformed", truth.records, truth.orders, truth.malformed)
	if truth.malformed == 0 || truth.orders == 0 {
		t.Fatalf("the generated traffic has %d malformed records and %d orders; want both", truth.malformed, truth.orders)
	}

	// Every configured processor's results, from its own tables.
	ddb := testenv.DynamoDB(t)
	for _, p := range cfg.ProcessorList() {
		typ := p.Name
		var ps struct {
			Type string `yaml:"type"`
		}
		if err := p.Settings.Decode(&ps); err == nil && ps.Type != "" {
			typ = ps.Type
		}
		check, ok := processorChecks[typ]
		if !ok {
			t.Errorf("processor %s (%s): the smoke test has no check for it; add one to processorChecks", p.Name, typ)
			continue
		}
		poll(ctx, t, "processor "+p.Name+" wrote its results", exited, func() (bool, string) {
			return check(ctx, ddb, cfg, truth, cw)
		})
	}
	poll(ctx, t, "every malformed record dead-lettered with its reason", exited, func() (bool, string) {
		items := scanAll(ctx, t, ddb, cfg.Tables.DeadLetter)
		for _, it := range items {
			if r, _ := it["reason"].(*ddbtypes.AttributeValueMemberS); r == nil || r.Value == "" {
				return false, fmt.Sprintf("dead letter %v has no reason", it["sk"])
			}
		}
		return len(items) == truth.malformed, fmt.Sprintf("%d of %d", len(items), truth.malformed)
	})
	var alarms []string
	poll(ctx, t, "an alarm reached the topic's SQS subscriber", exited, func() (bool, string) {
		out, err := testenv.SQS(t).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10})
		if err != nil {
			return false, err.Error()
		}
		for _, m := range out.Messages {
			alarms = append(alarms, aws.ToString(m.Body))
		}
		return len(alarms) > 0, fmt.Sprintf("%d messages", len(alarms))
	})
	t.Logf("first alarm: %s", tail(alarms[0], 300))

	// Graceful stop, as ECS does: SIGTERM; the worker drains and sends its
	// last worker metrics.
	stopped = true
	if err := worker.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker exited with %v after SIGTERM", err)
		}
	case <-ctx.Done():
		_ = worker.Process.Kill()
		t.Fatal("worker did not stop after SIGTERM")
	}

	checkWatchedMetrics(t, e, cw)
	checkGrantedOperations(t, e, rec, cw)
	t.Logf("results: %s", cw.summary())
}

// streamTruth is what was really sent, read back from the stream and
// decoded offline.
type streamTruth struct {
	records, orders, malformed int
}

func readStream(ctx context.Context, t *testing.T, stream string) streamTruth {
	t.Helper()
	kc := testenv.Kinesis(t)
	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var truth streamTruth
	for _, sh := range shards.Shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := records.NewDecoder(records.FormatAuto)
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				truth.records++
				var rec records.Record
				switch err := dec.Decode(r.Data, &rec); {
				case err != nil:
					truth.malformed++
				case rec.Kind == records.KindOrder:
					truth.orders++
				}
			}
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return truth
}

// processorChecks say, per processor type, what its durable output is.
// A configured type without an entry fails the test.
var processorChecks = map[string]func(context.Context, *dynamodb.Client, config.Consumer, streamTruth, *fakeCloudWatch) (bool, string){
	"topn":      globalWindow("topn#"),
	"histogram": globalWindow("histogram#"),
	"visitors":  globalWindow("visitors#"),
	"botdetect": func(ctx context.Context, ddb *dynamodb.Client, cfg config.Consumer, truth streamTruth, cw *fakeCloudWatch) (bool, string) {
		if ok, why := globalWindow("bot#")(ctx, ddb, cfg, truth, cw); !ok {
			return ok, why
		}
		return cw.has("BotRequests"), "BotRequests metric"
	},
	"hrmetrics": func(_ context.Context, _ *dynamodb.Client, _ config.Consumer, _ streamTruth, cw *fakeCloudWatch) (bool, string) {
		for _, m := range []string{"Requests", "Bytes", "Orders", "ProcessingLag"} {
			if !cw.has(m) {
				return false, "no " + m + " metric yet"
			}
		}
		return true, ""
	},
	"counters": func(ctx context.Context, ddb *dynamodb.Client, cfg config.Consumer, _ streamTruth, _ *fakeCloudWatch) (bool, string) {
		n := countItems(ctx, ddb, cfg.Tables.Counters)
		return n > 0, fmt.Sprintf("%d counter items", n)
	},
	"orderarchive": func(ctx context.Context, ddb *dynamodb.Client, cfg config.Consumer, truth streamTruth, _ *fakeCloudWatch) (bool, string) {
		n := countItems(ctx, ddb, cfg.App+"-orders")
		return n == truth.orders, fmt.Sprintf("%d of %d order lines archived", n, truth.orders)
	},
	"orderflood": func(ctx context.Context, ddb *dynamodb.Client, cfg config.Consumer, _ streamTruth, cw *fakeCloudWatch) (bool, string) {
		n := countItems(ctx, ddb, cfg.Tables.Alarms)
		return n > 0 && cw.has("OrderFloodAlarm"), fmt.Sprintf("%d alarm-history items, OrderFloodAlarm metric %v", n, cw.has("OrderFloodAlarm"))
	},
}

// globalWindow checks for a closed window's merged result: an item whose
// pk starts with prefix and whose sk is "global".
func globalWindow(prefix string) func(context.Context, *dynamodb.Client, config.Consumer, streamTruth, *fakeCloudWatch) (bool, string) {
	return func(ctx context.Context, ddb *dynamodb.Client, cfg config.Consumer, _ streamTruth, _ *fakeCloudWatch) (bool, string) {
		n := countGlobal(ctx, ddb, cfg.Tables.Results, prefix)
		return n > 0, fmt.Sprintf("no closed %s window in %s yet", prefix, cfg.Tables.Results)
	}
}

func countGlobal(ctx context.Context, ddb *dynamodb.Client, table, prefix string) int {
	n := 0
	for _, it := range scanAllCtx(ctx, ddb, table) {
		pk, _ := it["pk"].(*ddbtypes.AttributeValueMemberS)
		sk, _ := it["sk"].(*ddbtypes.AttributeValueMemberS)
		if pk != nil && sk != nil && strings.HasPrefix(pk.Value, prefix) && sk.Value == "global" {
			n++
		}
	}
	return n
}

func countItems(ctx context.Context, ddb *dynamodb.Client, table string) int {
	return len(scanAllCtx(ctx, ddb, table))
}

func scanAll(ctx context.Context, t *testing.T, ddb *dynamodb.Client, table string) []map[string]ddbtypes.AttributeValue {
	t.Helper()
	return scanAllCtx(ctx, ddb, table)
}

// scanAllCtx returns every item of table, or nil when the scan fails (the
// caller polls again).
func scanAllCtx(ctx context.Context, ddb *dynamodb.Client, table string) []map[string]ddbtypes.AttributeValue {
	var items []map[string]ddbtypes.AttributeValue
	p := dynamodb.NewScanPaginator(ddb, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil
		}
		items = append(items, page.Items...)
	}
	return items
}

// checkWatchedMetrics: every metric of the consumer's namespace that an
// alarm or the dashboard watches was published with exactly the
// dimensions they name; otherwise the alarm never sees data.
func checkWatchedMetrics(t *testing.T, e *Evaluator, cw *fakeCloudWatch) {
	t.Helper()
	ns := str(e.Params["MetricsNamespace"])
	type watched struct{ name, dims, by string }
	var want []watched
	for _, id := range e.T.ResourcesOfType("AWS::CloudWatch::Alarm") {
		p := props(t, e, id)
		if str(p["Namespace"]) != ns {
			continue
		}
		var dims []string
		for _, d := range asList(p["Dimensions"]) {
			dims = append(dims, str(get(d, "Name"))+"="+str(get(d, "Value")))
		}
		slices.Sort(dims)
		want = append(want, watched{str(p["MetricName"]), strings.Join(dims, ","), "alarm " + id})
	}
	var dash struct {
		Widgets []struct {
			Properties struct {
				Title   string
				Metrics [][]any
			}
		}
	}
	if err := json.Unmarshal([]byte(str(props(t, e, "Dashboard")["DashboardBody"])), &dash); err != nil {
		t.Fatal(err)
	}
	for _, w := range dash.Widgets {
		for _, row := range w.Properties.Metrics {
			if len(row) < 2 || row[0] != ns {
				continue
			}
			var dims []string
			for i := 2; i+1 < len(row); i += 2 {
				k, ok1 := row[i].(string)
				v, ok2 := row[i+1].(string)
				if ok1 && ok2 {
					dims = append(dims, k+"="+v)
				}
			}
			slices.Sort(dims)
			want = append(want, watched{fmt.Sprint(row[1]), strings.Join(dims, ","), "dashboard widget " + w.Properties.Title})
		}
	}
	if len(want) == 0 {
		t.Fatal("no alarm or dashboard widget watches the consumer's namespace")
	}
	for _, w := range want {
		if !cw.hasSeries(ns, w.name, w.dims) {
			t.Errorf("%s watches %s{%s} in %s, which the worker never published (published: %s)", w.by, w.name, w.dims, ns, cw.seriesOf(w.name))
		}
	}
}

// checkGrantedOperations: every AWS operation the worker called is an
// action the task role grants.
func checkGrantedOperations(t *testing.T, e *Evaluator, rec *opRecorder, cw *fakeCloudWatch) {
	t.Helper()
	granted := awsActions(roleStatements(t, e, "TaskRole"))
	called := rec.ops()
	if cw.calls() > 0 {
		called = append(called, "cloudwatch:PutMetricData")
	}
	for _, op := range called {
		svc, name, _ := strings.Cut(op, ":")
		for _, action := range iamActions(Call{Service: svc, Op: name}) {
			if !granted[action] {
				t.Errorf("the worker called %s, which needs %s: the task role does not grant it", op, action)
			}
		}
	}
	t.Logf("operations called: %v", called)
}

// opRecorder is a set of pass-through proxies in front of the local
// servers that record which operation each request calls.
type opRecorder struct {
	mu  sync.Mutex
	set map[string]bool
}

func (r *opRecorder) proxy(t *testing.T, service, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		op := ""
		if _, o := faultproxy.Target(req.Header); o != "" {
			op = o
		} else if body, err := io.ReadAll(req.Body); err == nil { // query protocol (SNS)
			req.Body = io.NopCloser(bytes.NewReader(body))
			if v, err := url.ParseQuery(string(body)); err == nil {
				op = v.Get("Action")
			}
		}
		if op != "" {
			r.mu.Lock()
			if r.set == nil {
				r.set = map[string]bool{}
			}
			r.set[service+":"+op] = true
			r.mu.Unlock()
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (r *opRecorder) ops() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.set))
}

// fakeCloudWatch answers PutMetricData (Smithy RPC v2 CBOR, the SDK's
// default protocol for CloudWatch) and records the series it was sent.
type fakeCloudWatch struct {
	mu     sync.Mutex
	series map[string]map[string]int // "ns|name" -> sorted dims -> datums
	n      int
}

func (f *fakeCloudWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	// The SDK gzips larger PutMetricData bodies (request compression).
	if err == nil && r.Header.Get("Content-Encoding") == "gzip" {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(body)); err == nil {
			body, err = io.ReadAll(zr)
		}
	}
	if err == nil && !strings.HasSuffix(r.URL.Path, "/operation/PutMetricData") {
		err = fmt.Errorf("unexpected operation %s", r.URL.Path)
	}
	if err == nil {
		err = f.record(body)
	}
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#InvalidParameterValueException"), "message": cbor.String(err.Error())}))
		return
	}
	_, _ = w.Write(cbor.Encode(cbor.Map{}))
}

func (f *fakeCloudWatch) record(body []byte) error {
	v, err := cbor.Decode(body)
	if err != nil {
		return err
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return errors.New("request is not a CBOR map")
	}
	ns, _ := m["Namespace"].(cbor.String)
	data, _ := m["MetricData"].(cbor.List)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.series == nil {
		f.series = map[string]map[string]int{}
	}
	f.n++
	for _, x := range data {
		dm, _ := x.(cbor.Map)
		name, _ := dm["MetricName"].(cbor.String)
		var dims []string
		if l, ok := dm["Dimensions"].(cbor.List); ok {
			for _, y := range l {
				dd, _ := y.(cbor.Map)
				k, _ := dd["Name"].(cbor.String)
				val, _ := dd["Value"].(cbor.String)
				dims = append(dims, string(k)+"="+string(val))
			}
		}
		slices.Sort(dims)
		key := string(ns) + "|" + string(name)
		if f.series[key] == nil {
			f.series[key] = map[string]int{}
		}
		f.series[key][strings.Join(dims, ",")]++
	}
	return nil
}

func (f *fakeCloudWatch) has(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.series {
		if strings.HasSuffix(k, "|"+name) {
			return true
		}
	}
	return false
}

func (f *fakeCloudWatch) hasSeries(ns, name, dims string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.series[ns+"|"+name][dims] > 0
}

func (f *fakeCloudWatch) seriesOf(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, s := range f.series {
		if strings.HasSuffix(k, "|"+name) {
			for d := range s {
				out = append(out, k+"{"+d+"}")
			}
		}
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}

func (f *fakeCloudWatch) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// summary counts datums per metric name.
func (f *fakeCloudWatch) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	counts := map[string]int{}
	for k, s := range f.series {
		for _, n := range s {
			counts[k[strings.Index(k, "|")+1:]] += n
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	return fmt.Sprintf("%d PutMetricData calls; datums %s", f.n, strings.Join(parts, " "))
}

// poll calls cond until it holds, the worker exits, or ctx ends.
func poll(ctx context.Context, t *testing.T, what string, exited <-chan error, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		select {
		case err := <-exited:
			t.Fatalf("waiting for %s (%s): the worker exited: %v", what, last, err)
		case <-ctx.Done():
			t.Fatalf("waiting for %s: not after %v (%s)", what, smokeTimeout, last)
		case <-tick.C:
		}
	}
}

func runCmd(ctx context.Context, t *testing.T, env []string, bin string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, tail(string(out), 4000))
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("ops address %q: %v", addr, err)
	}
	return port
}

// waitPortFree waits until nothing listens on the ops port: the task's
// environment fixes it, and another test or a demo may still hold it.
func waitPortFree(ctx context.Context, t *testing.T, port string) {
	t.Helper()
	poll(ctx, t, "ops port "+port+" free", nil, func() (bool, string) {
		ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", port))
		if err != nil {
			return false, err.Error()
		}
		ln.Close()
		return true, ""
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// lockedBuffer is a bytes.Buffer safe for a child process's writes and
// the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
