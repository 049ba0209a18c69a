package setup_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/zap/zaptest"

	"github.com/shardwatch/shardwatch/internal/setup"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

func localClients(t *testing.T) setup.Clients {
	return setup.Clients{Kinesis: testenv.Kinesis(t), DynamoDB: testenv.DynamoDB(t), SNS: testenv.SNS(t)}
}

// deleteAfter removes everything a fleet plan created, so runs against the
// shared stack leave nothing behind. The testenv Create* helpers cannot be
// used here: creating is what is under test.
func deleteAfter(t *testing.T, plan setup.Plan) {
	t.Cleanup(func() {
		for _, tab := range plan.Tables {
			testenv.DeleteTable(t, tab.Name)
		}
		if plan.Stream != nil {
			testenv.DeleteStream(t, plan.Stream.Name)
		}
		for _, topic := range plan.Topics {
			testenv.DeleteTopic(t, testenv.TopicARN(topic))
		}
	})
}

func fleetPlan(t *testing.T) (string, setup.Plan) {
	app := testenv.Name(t, "app")
	plan := setup.FleetPlan(app, &setup.Stream{Name: app + "-stream", Shards: 2})
	deleteAfter(t, plan)
	return app, plan
}

// TestApplyFIFOTopic: a FIFO plan creates APP-alarms.fifo (FifoTopic set,
// which real SNS requires for the name).
func TestApplyFIFOTopic(t *testing.T) {
	t.Parallel()
	app := testenv.Name(t, "fifo")
	plan := setup.WithFIFOTopic(setup.Plan{Topics: []string{app + setup.SuffixAlarmTopic}})
	deleteAfter(t, plan)
	res, err := setup.Apply(t.Context(), localClients(t), plan, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{app + "-alarms.fifo": "arn:aws:sns:" + testenv.Region + ":" + testenv.AccountID + ":" + app + "-alarms.fifo"}
	if diff := cmp.Diff(want, res.TopicARNs); diff != "" {
		t.Errorf("topic ARNs (-want +got):\n%s", diff)
	}
}

func TestApplyCreatesThenNoOp(t *testing.T) {
	t.Parallel()
	app, plan := fleetPlan(t)
	c := localClients(t)

	first, err := setup.Apply(t.Context(), c, plan, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	wantCreated := []string{
		"stream/" + app + "-stream",
		"table/" + app, "table/" + app + "-alarms", "table/" + app + "-counters",
		"table/" + app + "-deadletter", "table/" + app + "-orders", "table/" + app + "-results",
		"ttl/" + app + "-alarms", "ttl/" + app + "-counters", "ttl/" + app + "-deadletter", "ttl/" + app + "-results",
	}
	if diff := cmp.Diff(wantCreated, first.Created); diff != "" {
		t.Errorf("first Apply created (-want +got):\n%s", diff)
	}
	wantTopic := "arn:aws:sns:" + testenv.Region + ":" + testenv.AccountID + ":" + app + "-alarms"
	if diff := cmp.Diff(map[string]string{app + "-alarms": wantTopic}, first.TopicARNs); diff != "" {
		t.Errorf("topic ARNs (-want +got):\n%s", diff)
	}
	if first.StreamARN == "" {
		t.Error("no stream ARN")
	}
	checkTables(t, plan)

	second, err := setup.Apply(t.Context(), c, plan, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if len(second.Created) != 0 {
		t.Errorf("second Apply created %v, want nothing", second.Created)
	}
	if diff := cmp.Diff(first.TopicARNs, second.TopicARNs); diff != "" || second.StreamARN != first.StreamARN {
		t.Errorf("second Apply reports other resources: stream %q vs %q, topics (-first +second):\n%s",
			first.StreamARN, second.StreamARN, diff)
	}
}

// TestApplyConcurrent reproduces the start-up race of two workers on a new
// application (vmware-go-kcl-v2 loses it with "Cannot create preexisting
// table"): both must succeed.
func TestApplyConcurrent(t *testing.T) {
	t.Parallel()
	_, plan := fleetPlan(t)
	const n = 2
	var wg sync.WaitGroup
	results := make([]setup.Result, n)
	errs := make([]error, n)
	for i := range n {
		c := localClients(t)
		log := zaptest.NewLogger(t)
		wg.Go(func() { results[i], errs[i] = setup.Apply(t.Context(), c, plan, log) })
	}
	wg.Wait()
	count := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Apply #%d: %v", i, errs[i])
		}
		for _, c := range results[i].Created {
			count[c]++
		}
	}
	// The server decides which CreateStream/CreateTable wins, so each is
	// created exactly once. Enabling TTL is check-then-act: both callers may
	// enable it (DynamoDB Local accepts both; AWS rejects the second, which
	// Apply then re-checks), so each TTL is enabled at least once.
	for _, tab := range plan.Tables {
		if got := count["table/"+tab.Name]; got != 1 {
			t.Errorf("table %s created %d times, want 1", tab.Name, got)
		}
		if got := count["ttl/"+tab.Name]; tab.TTLAttribute != "" && (got < 1 || got > n) {
			t.Errorf("TTL on %s enabled %d times, want 1..%d", tab.Name, got, n)
		}
	}
	if got := count["stream/"+plan.Stream.Name]; got != 1 {
		t.Errorf("stream created %d times, want 1", got)
	}
	if diff := cmp.Diff(results[0].TopicARNs, results[1].TopicARNs); diff != "" {
		t.Errorf("topic ARNs differ (-first +second):\n%s", diff)
	}
	checkTables(t, plan)
}

func TestApplyKeyConflict(t *testing.T) {
	t.Parallel()
	name := testenv.Name(t, "conflict")
	testenv.CreateTable(t, name, "other", "")
	_, err := setup.Apply(t.Context(), setup.Clients{DynamoDB: testenv.DynamoDB(t)}, setup.Plan{
		Tables: []setup.Table{{Name: name, PartitionKey: "pk", SortKey: "sk"}},
	}, zaptest.NewLogger(t))
	if !errors.Is(err, setup.ErrConflict) {
		t.Fatalf("Apply error = %v, want ErrConflict", err)
	}
}

// checkTables verifies every table is ACTIVE, on-demand, with the planned
// string keys and TTL.
func checkTables(t *testing.T, plan setup.Plan) {
	t.Helper()
	db := testenv.DynamoDB(t)
	for _, tab := range plan.Tables {
		out, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(tab.Name)})
		if err != nil {
			t.Fatalf("describe %s: %v", tab.Name, err)
		}
		d := out.Table
		type keyDef struct{ Name, Kind, Type string }
		var got []keyDef
		attrType := map[string]string{}
		for _, a := range d.AttributeDefinitions {
			attrType[aws.ToString(a.AttributeName)] = string(a.AttributeType)
		}
		for _, k := range d.KeySchema {
			n := aws.ToString(k.AttributeName)
			got = append(got, keyDef{n, string(k.KeyType), attrType[n]})
		}
		want := []keyDef{{tab.PartitionKey, "HASH", "S"}}
		if tab.SortKey != "" {
			want = append(want, keyDef{tab.SortKey, "RANGE", "S"})
		}
		if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b keyDef) bool { return a.Kind < b.Kind })); diff != "" {
			t.Errorf("table %s keys (-want +got):\n%s", tab.Name, diff)
		}
		if d.TableStatus != types.TableStatusActive {
			t.Errorf("table %s status %s", tab.Name, d.TableStatus)
		}
		if d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
			t.Errorf("table %s is not PAY_PER_REQUEST: %+v", tab.Name, d.BillingModeSummary)
		}
		ttl, err := db.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tab.Name)})
		if err != nil {
			t.Fatalf("describe TTL %s: %v", tab.Name, err)
		}
		gotTTL := ""
		if s := ttl.TimeToLiveDescription.TimeToLiveStatus; s == types.TimeToLiveStatusEnabled || s == types.TimeToLiveStatusEnabling {
			gotTTL = aws.ToString(ttl.TimeToLiveDescription.AttributeName)
		}
		if gotTTL != tab.TTLAttribute {
			t.Errorf("table %s TTL attribute %q, want %q", tab.Name, gotTTL, tab.TTLAttribute)
		}
	}
}
