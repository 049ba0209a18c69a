package deploycheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/pkg/records"
)

func decodeJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(readFile(t, deployFile(t, name))))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// The raw JSON files are the template's task definition and service for
// params.example.json, written out for `aws ecs` users. Everything either
// side defines must agree.
func TestRawJSONAgreesWithTemplate(t *testing.T) {
	e := evaluator(t, nil)
	tests := []struct {
		file, resource string
		allowed        map[string]string
	}{
		{file: "taskdef.json", resource: "TaskDefinition"},
		{file: "service.json", resource: "Service", allowed: map[string]string{
			"$.taskDefinition": "the CLI names the family (its latest revision); the stack passes the new revision's ARN",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			diffs := Agree(props(t, e, tc.resource), decodeJSON(t, tc.file), tc.allowed)
			if len(diffs) > 0 {
				t.Errorf("%s disagrees with template.yaml %s:\n%s", tc.file, tc.resource, strings.Join(diffs, "\n"))
			}
		})
	}
}

// Agree must notice differences, or the test above proves nothing.
func TestAgreeFindsDifferences(t *testing.T) {
	tmpl := map[string]any{
		"Family": "app",
		"ContainerDefinitions": []any{map[string]any{
			"User": "65532", "StopTimeout": int64(60), "Image": Wild + ":" + Wild,
		}},
	}
	tests := []struct {
		name     string
		concrete string
		want     []string
	}{
		{"equal", `{"family":"app","containerDefinitions":[{"user":"65532","stopTimeout":60,"image":"r/x:1"}]}`, nil},
		{"value", `{"family":"app","containerDefinitions":[{"user":"0","stopTimeout":60,"image":"r/x:1"}]}`,
			[]string{`$.containerDefinitions[0].user: template "65532", JSON "0"`}},
		{"wildcard mismatch", `{"family":"app","containerDefinitions":[{"user":"65532","stopTimeout":60,"image":"untagged"}]}`,
			[]string{`$.containerDefinitions[0].image: template "*:*", JSON "untagged"`}},
		{"missing and extra", `{"family":"app","cpu":"256","containerDefinitions":[{"user":"65532","image":"r/x:1"}]}`,
			[]string{"$.containerDefinitions[0].stopTimeout: only in the template", "$.cpu: only in the JSON"}},
		{"list length", `{"family":"app","containerDefinitions":[]}`,
			[]string{"$.containerDefinitions: template has 1 elements, JSON 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := json.NewDecoder(strings.NewReader(tc.concrete))
			d.UseNumber()
			var c any
			if err := d.Decode(&c); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, Agree(tmpl, c, nil)); diff != "" {
				t.Errorf("diffs (-want +got):\n%s", diff)
			}
		})
	}
}

type tableShape struct {
	Name, Billing, Hash, Range, TTL string
	AttrTypes                       map[string]string
}

func tableOf(t *testing.T, p map[string]any) tableShape {
	t.Helper()
	s := tableShape{
		Name:      str(p["TableName"]),
		Billing:   str(p["BillingMode"]),
		AttrTypes: map[string]string{},
	}
	for _, k := range asList(p["KeySchema"]) {
		switch get(k, "KeyType") {
		case "HASH":
			s.Hash = str(get(k, "AttributeName"))
		case "RANGE":
			s.Range = str(get(k, "AttributeName"))
		}
	}
	for _, a := range asList(p["AttributeDefinitions"]) {
		s.AttrTypes[str(get(a, "AttributeName"))] = str(get(a, "AttributeType"))
	}
	if ttl := asMap(p["TimeToLiveSpecification"]); ttl != nil && ttl["Enabled"] == true {
		s.TTL = str(ttl["AttributeName"])
	}
	return s
}

// The tables, topic and names follow the fleet contract exactly.
func TestTemplateMatchesFleetContract(t *testing.T) {
	e := evaluator(t, map[string]string{"AppName": "shop"})
	tables := map[string]tableShape{
		"LeaseTable":      {Name: "shop", Billing: "PAY_PER_REQUEST", Hash: "ShardID", AttrTypes: map[string]string{"ShardID": "S"}},
		"ResultsTable":    {Name: "shop-results", Billing: "PAY_PER_REQUEST", Hash: "pk", Range: "sk", TTL: "expires_at", AttrTypes: map[string]string{"pk": "S", "sk": "S"}},
		"CountersTable":   {Name: "shop-counters", Billing: "PAY_PER_REQUEST", Hash: "event", Range: "bucket", TTL: "expires_at", AttrTypes: map[string]string{"event": "S", "bucket": "S"}},
		"AlarmsTable":     {Name: "shop-alarms", Billing: "PAY_PER_REQUEST", Hash: "alarm", Range: "period", TTL: "expires_at", AttrTypes: map[string]string{"alarm": "S", "period": "S"}},
		"DeadLetterTable": {Name: "shop-deadletter", Billing: "PAY_PER_REQUEST", Hash: "pk", Range: "sk", TTL: "expires_at", AttrTypes: map[string]string{"pk": "S", "sk": "S"}},
		"OrdersTable":     {Name: "shop-orders", Billing: "PAY_PER_REQUEST", Hash: "pk", Range: "sk", AttrTypes: map[string]string{"pk": "S", "sk": "S"}},
	}
	got := map[string]tableShape{}
	for _, id := range e.T.ResourcesOfType("AWS::DynamoDB::Table") {
		got[id] = tableOf(t, props(t, e, id))
	}
	if diff := cmp.Diff(tables, got); diff != "" {
		t.Errorf("tables (-want +got):\n%s", diff)
	}
	if name := str(props(t, e, "AlarmTopic")["TopicName"]); name != "shop-alarms" {
		t.Errorf("topic name %q, want shop-alarms", name)
	}

	// The environment is the consumer's whole configuration: every
	// SHARDWATCH_* name must be a setting of the consumer's own table
	// (config.CheckEnviron), and loading exactly this environment must give
	// the stack's names and every example processor.
	e = evaluator(t, map[string]string{"AppName": "shop", "MaxLeasesPerTask": "3"})
	c, err := TemplateContainer(e, "TaskDefinition")
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadContainerConfig(t, c)
	got2 := struct {
		App, Stream, TopicARN, DeadLetter, Namespace, OpsAddr string
		MaxLeases                                             int
	}{cfg.App, cfg.Stream, cfg.Alarms.TopicARN, cfg.DeadLetter.Sink, cfg.Metrics.Namespace, cfg.OpsAddr, cfg.MaxLeases}
	want2 := got2
	want2.App, want2.Stream, want2.TopicARN = "shop", "shardwatch-events", "arn:aws:sns:us-east-1:123456789012:shop-alarms"
	want2.DeadLetter, want2.Namespace, want2.OpsAddr, want2.MaxLeases = "dynamodb", "Shardwatch", "0.0.0.0:9090", 3
	if diff := cmp.Diff(want2, got2); diff != "" {
		t.Errorf("configuration from the task environment (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(exampleProcessors(t), processorSettings(t, cfg)); diff != "" {
		t.Errorf("deployed processors differ from deploy/consumer.example.yaml (-want +got):\n%s", diff)
	}

	// The format parameter offers exactly the consumer's formats.
	var formats, allowed []string
	for _, f := range records.Formats() {
		formats = append(formats, string(f))
	}
	for _, v := range e.T.Parameters["RecordFormat"].AllowedValues {
		allowed = append(allowed, scalarString(v))
	}
	if diff := cmp.Diff(formats, allowed); diff != "" {
		t.Errorf("RecordFormat AllowedValues differ from records.Formats() (-want +got):\n%s", diff)
	}

	// Processors from SSM: the variable moves from the environment to the
	// secrets, never both.
	e = evaluator(t, map[string]string{"ProtectedSettingName": config.EnvProcessors,
		"ProtectedSettingValueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/shop-processors"})
	if c, err = TemplateContainer(e, "TaskDefinition"); err != nil {
		t.Fatal(err)
	}
	if _, inEnv := c.Env[config.EnvProcessors]; inEnv || !slices.Contains(c.Secrets, config.EnvProcessors) {
		t.Errorf("processors from SSM: env has it %v, secrets %v", inEnv, c.Secrets)
	}
}

type containerShape struct {
	NetworkMode, Compat, User, HealthCmd, LogDriver, LogMode string
	ReadOnlyRoot, HasBufferSize                              bool
	StopTimeout                                              int
}

// The task definition is what a lease worker on Fargate needs.
func TestTaskDefinitionShape(t *testing.T) {
	e := evaluator(t, nil)
	p := props(t, e, "TaskDefinition")
	c := get(p, "ContainerDefinitions", 0)
	stop, _ := strconv.Atoi(scalarString(get(c, "StopTimeout")))
	got := containerShape{
		NetworkMode:   str(p["NetworkMode"]),
		Compat:        fmt.Sprint(p["RequiresCompatibilities"]),
		User:          str(get(c, "User")),
		HealthCmd:     fmt.Sprint(get(c, "HealthCheck", "Command")),
		LogDriver:     str(get(c, "LogConfiguration", "LogDriver")),
		LogMode:       str(get(c, "LogConfiguration", "Options", "mode")),
		ReadOnlyRoot:  get(c, "ReadonlyRootFilesystem") == true,
		HasBufferSize: str(get(c, "LogConfiguration", "Options", "max-buffer-size")) != "",
		StopTimeout:   stop,
	}
	want := containerShape{
		NetworkMode: "awsvpc", Compat: "[FARGATE]", User: "65532",
		HealthCmd: "[CMD /consumer healthcheck]", LogDriver: "awslogs", LogMode: "non-blocking",
		ReadOnlyRoot: true, HasBufferSize: true, StopTimeout: 60,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("container (-want +got):\n%s", diff)
	}

	// StopTimeout must leave room after the consumer's own deadline and
	// stay within Fargate's maximum.
	var shutdown time.Duration
	for _, kv := range asList(get(c, "Environment")) {
		if get(kv, "Name") == "SHARDWATCH_SHUTDOWN_TIMEOUT" {
			d, err := time.ParseDuration(str(get(kv, "Value")))
			if err != nil {
				t.Fatal(err)
			}
			shutdown = d
		}
	}
	limit := time.Duration(stop) * time.Second
	if shutdown == 0 || limit < shutdown+20*time.Second || limit > 120*time.Second {
		t.Errorf("StopTimeout %v vs SHARDWATCH_SHUTDOWN_TIMEOUT %v: want >= shutdown+20s and <= 120s", limit, shutdown)
	}

	// Every Fargate size choice yields a valid CPU/memory pair.
	valid := map[string][]string{
		"256": {"512", "1024", "2048"}, "512": {"1024", "2048", "3072", "4096"},
		"1024": {"2048", "3072", "4096", "5120", "6144", "7168", "8192"},
		"2048": {"4096", "5120", "6144", "7168", "8192", "16384"}, "4096": {"8192", "16384", "30720"},
	}
	for _, size := range e.T.Parameters["TaskSize"].AllowedValues {
		p := props(t, evaluator(t, map[string]string{"TaskSize": scalarString(size)}), "TaskDefinition")
		cpu, mem := str(p["Cpu"]), str(p["Memory"])
		if !slices.Contains(valid[cpu], mem) {
			t.Errorf("TaskSize %v gives cpu %s memory %s: not a Fargate combination", size, cpu, mem)
		}
	}
}

func TestServiceDeploymentSettings(t *testing.T) {
	p := props(t, evaluator(t, nil), "Service")
	got := get(p, "DeploymentConfiguration")
	want := map[string]any{
		"MinimumHealthyPercent":    int64(100),
		"MaximumPercent":           int64(200),
		"DeploymentCircuitBreaker": map[string]any{"Enable": true, "Rollback": true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DeploymentConfiguration (-want +got):\n%s", diff)
	}
}

func TestAutoscalingCappedAtShardCount(t *testing.T) {
	tests := []struct {
		params  map[string]string
		wantMax string
	}{
		{map[string]string{"ShardCount": "6"}, "6"},
		{map[string]string{"ShardCount": "6", "MaxTasks": "0"}, "6"},
		{map[string]string{"ShardCount": "6", "MaxTasks": "3"}, "3"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.params), func(t *testing.T) {
			p := props(t, evaluator(t, tc.params), "ScalableTarget")
			if got := scalarString(p["MaxCapacity"]); got != tc.wantMax {
				t.Errorf("MaxCapacity %s, want %s", got, tc.wantMax)
			}
		})
	}

	p := props(t, evaluator(t, nil), "LagScalingPolicy")
	cfg := get(p, "TargetTrackingScalingPolicyConfiguration")
	metric := get(cfg, "CustomizedMetricSpecification")
	got := []string{str(get(metric, "Namespace")), str(get(metric, "MetricName")), str(get(metric, "Dimensions", 0, "Name")), str(get(metric, "Dimensions", 0, "Value"))}
	want := []string{"AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", "shardwatch-events"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scaling metric (-want +got):\n%s", diff)
	}
	in, _ := strconv.Atoi(scalarString(get(cfg, "ScaleInCooldown")))
	out, _ := strconv.Atoi(scalarString(get(cfg, "ScaleOutCooldown")))
	if in < 900 || in <= 4*out {
		t.Errorf("ScaleInCooldown %d s: want >= 900 s and well above ScaleOutCooldown %d s (every scale-in moves leases)", in, out)
	}
}

type alarmShape struct {
	Metrics   string // namespace/metric[stat] of each metric used
	Period    string
	Actions   bool
	Condition string
}

func alarmOf(p map[string]any) alarmShape {
	a := alarmShape{
		Period:    scalarString(p["Period"]),
		Actions:   len(asList(p["AlarmActions"])) > 0,
		Condition: fmt.Sprintf("%s %v", p["ComparisonOperator"], p["Threshold"]),
	}
	dims := func(l any) string {
		var d []string
		for _, x := range asList(l) {
			d = append(d, fmt.Sprintf("%v=%v", get(x, "Name"), get(x, "Value")))
		}
		slices.Sort(d)
		return "{" + strings.Join(d, ",") + "}"
	}
	var ms []string
	if p["MetricName"] != nil {
		ms = append(ms, fmt.Sprintf("%v/%v%s[%v]", p["Namespace"], p["MetricName"], dims(p["Dimensions"]), p["Statistic"]))
	}
	for _, m := range asList(p["Metrics"]) {
		if ms0 := get(m, "MetricStat"); ms0 != nil {
			ms = append(ms, fmt.Sprintf("%v/%v%s[%v]", get(ms0, "Metric", "Namespace"), get(ms0, "Metric", "MetricName"),
				dims(get(ms0, "Metric", "Dimensions")), get(ms0, "Stat")))
			a.Period = scalarString(get(ms0, "Period"))
		}
	}
	a.Metrics = strings.Join(ms, ",")
	return a
}

func TestAlarms(t *testing.T) {
	e := evaluator(t, nil)
	got := map[string]alarmShape{}
	for _, id := range e.T.ResourcesOfType("AWS::CloudWatch::Alarm") {
		got[id] = alarmOf(props(t, e, id))
	}
	want := map[string]alarmShape{
		"IteratorAgeAlarm":      {Metrics: "AWS/Kinesis/GetRecords.IteratorAgeMilliseconds{StreamName=shardwatch-events}[Maximum]", Period: "60", Actions: true, Condition: "GreaterThanThreshold 300000"},
		"ProcessingErrorsAlarm": {Metrics: "Shardwatch/ProcessingErrors{Stream=shardwatch-events}[Sum]", Period: "60", Actions: true, Condition: "GreaterThanOrEqualToThreshold 1"},
		"DeadLetterRateAlarm":   {Metrics: "Shardwatch/DeadLettered{Stream=shardwatch-events}[Sum],Shardwatch/RecordsProcessed{Stream=shardwatch-events}[Sum]", Period: "300", Actions: true, Condition: "GreaterThanThreshold 1"},
		"IdleWorkerAlarm":       {Metrics: "Shardwatch/LeasesHeld{Stream=shardwatch-events}[Minimum]", Period: "60", Actions: true, Condition: "LessThanThreshold 1"},
		"OrderFloodAlarm":       {Metrics: "Shardwatch/OrderFloodAlarm{Alarm=order-flood,Stream=shardwatch-events}[Maximum]", Period: "10", Actions: true, Condition: "GreaterThanOrEqualToThreshold 1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alarms (-want +got):\n%s", diff)
	}
	documented := documentedMetrics(t)
	for id, a := range got {
		for m := range strings.SplitSeq(a.Metrics, ",") {
			ns, rest, _ := strings.Cut(m, "/")
			name, _, _ := strings.Cut(rest, "{")
			if ns == "Shardwatch" && !documented[name] {
				t.Errorf("alarm %s uses %s, which deploy/ecs/METRICS.md does not define", id, name)
			}
		}
	}
}

// The dashboard body is JSON after substitution, shows what the issue
// asks for, and uses only documented consumer metrics.
func TestDashboard(t *testing.T) {
	e := evaluator(t, nil)
	body := str(props(t, e, "Dashboard")["DashboardBody"])
	var dash struct {
		Widgets []struct {
			Type       string
			Properties struct {
				Title   string
				Metrics [][]any
				Alarms  []string
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &dash); err != nil {
		t.Fatalf("dashboard body is not JSON of the dashboard shape: %v", err)
	}
	if strings.Contains(body, Wild) {
		t.Errorf("dashboard body has an unresolved value")
	}
	documented := documentedMetrics(t)
	var titles []string
	for _, w := range dash.Widgets {
		titles = append(titles, w.Properties.Title)
		for _, m := range w.Properties.Metrics {
			ns, _ := m[0].(string)
			if ns == "" { // an expression row
				continue
			}
			if ns == "Shardwatch" && !documented[fmt.Sprint(m[1])] {
				t.Errorf("widget %q uses %v, which METRICS.md does not define", w.Properties.Title, m[1])
			}
		}
		for _, a := range w.Properties.Alarms {
			if !strings.HasPrefix(a, "arn:aws:cloudwatch:us-east-1:123456789012:alarm:shardwatch-") {
				t.Errorf("widget %q: alarm %q", w.Properties.Title, a)
			}
		}
	}
	for _, want := range []string{"Traffic per second", "Bot share (%)", "Orders and order-flood alarms", "Lag (ms)", "Leases per worker"} {
		if !slices.Contains(titles, want) {
			t.Errorf("dashboard has no %q widget (has %q)", want, titles)
		}
	}
}

// A created stream is what the roles and the container refer to.
func TestCreateStreamWiring(t *testing.T) {
	e := evaluator(t, map[string]string{"CreateStream": "true", "DeployProducerRole": "true"})
	if !e.Exists("Stream") || !e.Exists("ProducerRole") {
		t.Fatal("Stream and ProducerRole should be created")
	}
	if got := scalarString(props(t, e, "Stream")["ShardCount"]); got != "4" {
		t.Errorf("stream ShardCount %s, want 4", got)
	}
	e = evaluator(t, nil)
	if e.Exists("Stream") || e.Exists("ProducerRole") || e.Exists("AlarmHttpsSubscription") {
		t.Error("optional resources exist with default parameters")
	}
	if !e.Exists("AlarmEmailSubscription") {
		t.Error("the example's alarm e-mail has no subscription")
	}
}

// AlarmTopicKind fifo sends order-flood messages to a FIFO topic with an
// SQS FIFO queue: the worker's topic and its only sns:Publish grant.
func TestFifoAlarmTopic(t *testing.T) {
	e := evaluator(t, map[string]string{"AppName": "shop", "AlarmTopicKind": "fifo"})
	c, err := TemplateContainer(e, "TaskDefinition")
	if err != nil {
		t.Fatal(err)
	}
	topic := loadContainerConfig(t, c).Alarms.TopicARN
	if topic != "arn:aws:sns:us-east-1:123456789012:shop-order-flood.fifo" {
		t.Errorf("worker topic %q, want the FIFO topic", topic)
	}
	if p := props(t, e, "OrderFloodFifoTopic"); p["FifoTopic"] != true || p["ContentBasedDeduplication"] != false {
		t.Errorf("FIFO topic properties %v", p)
	}
	if p := props(t, e, "OrderFloodQueueSubscription"); get(p, "Protocol") != "sqs" || get(p, "RawMessageDelivery") != true {
		t.Errorf("subscription %v", p)
	}
	var publish []string
	for _, st := range roleStatements(t, e, "TaskRole") {
		if slices.Contains(st.Actions, "sns:Publish") {
			publish = append(publish, st.Resources...)
		}
	}
	if diff := cmp.Diff([]string{topic}, publish); diff != "" {
		t.Errorf("sns:Publish resources (-want +got):\n%s", diff)
	}
	if e.Exists("OrderFloodQueue") != true || evaluator(t, nil).Exists("OrderFloodQueue") {
		t.Error("the FIFO queue exists exactly when AlarmTopicKind is fifo")
	}
}
