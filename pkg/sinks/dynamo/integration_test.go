package dynamo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/faultproxy"
	"github.com/shardwatch/shardwatch/pkg/results"
	"github.com/shardwatch/shardwatch/pkg/sinks"
	"github.com/shardwatch/shardwatch/pkg/sinks/internal/sinktest"
	"github.com/shardwatch/shardwatch/pkg/sinks/retry"
)

// localTable creates a PAY_PER_REQUEST table with string keys pk (+ sk when
// non-empty) on DynamoDB Local and deletes it when the test ends.
func localTable(t *testing.T, prefix, pk, sk string) (*dynamodb.Client, string) {
	t.Helper()
	ep := sinktest.Endpoint(t, "DYNAMODB")
	client := dynamodb.NewFromConfig(sinktest.Config(t), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
	name := sinktest.Name(prefix)
	attrs := []types.AttributeDefinition{{AttributeName: aws.String(pk), AttributeType: types.ScalarAttributeTypeS}}
	keys := []types.KeySchemaElement{{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash}}
	if sk != "" {
		attrs = append(attrs, types.AttributeDefinition{AttributeName: aws.String(sk), AttributeType: types.ScalarAttributeTypeS})
		keys = append(keys, types.KeySchemaElement{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(name), AttributeDefinitions: attrs, KeySchema: keys,
		BillingMode: types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	t.Cleanup(func() {
		// t.Context is already done during cleanup.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("delete table %s: %v", name, err)
		}
	})
	w := dynamodb.NewTableExistsWaiter(client)
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 20*time.Second); err != nil {
		t.Fatalf("table %s not active: %v", name, err)
	}
	return client, name
}

func TestIntegrationWriteAndQuery(t *testing.T) {
	client, table := localTable(t, "sinks-results", "pk", "sk")
	w, err := NewItemWriter(client, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 1,000 items over 300 keys, ~4 KB each: the last value per key must
	// win, and 1.2 MB of results makes Query page (1 MB per page).
	pad := strings.Repeat("x", 4000)
	var items []results.Item
	want := map[string]string{}
	for i := range 1000 {
		sk := fmt.Sprintf("2026-11-22T09:%03d", i%300)
		v := fmt.Sprintf("v%04d", i)
		want[sk] = v
		items = append(items, results.Item{Table: table, Key: "w1|" + sk, Attrs: map[string]types.AttributeValue{
			"pk":  &types.AttributeValueMemberS{Value: "w1"},
			"sk":  &types.AttributeValueMemberS{Value: sk},
			"v":   &types.AttributeValueMemberS{Value: v},
			"pad": &types.AttributeValueMemberS{Value: pad},
		}})
	}
	if err := w.WriteItems(t.Context(), items); err != nil {
		t.Fatalf("WriteItems: %v", err)
	}
	if st := w.Stats(); st.Written != 300 || st.Duplicates != 700 || st.Calls < 12 {
		t.Errorf("stats %+v: want 300 written, 700 duplicates, >= 12 calls", st)
	}

	s, err := NewStore(client, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Query(t.Context(), table, "pk", "w1", "sk", "", "")
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	gotV := map[string]string{}
	for _, it := range got {
		gotV[it["sk"].(*types.AttributeValueMemberS).Value] = it["v"].(*types.AttributeValueMemberS).Value
	}
	if d := cmp.Diff(want, gotV); d != "" {
		t.Errorf("read back (-want +got):\n%s", d)
	}
	if st := s.Stats(); st.QueryPages < 2 {
		t.Errorf("query pages = %d, want >= 2 (pagination not exercised)", st.QueryPages)
	}

	// Range bounds, inclusive at both ends, and open ends.
	for _, tt := range []struct {
		from, to string
		want     int
	}{
		{"2026-11-22T09:010", "2026-11-22T09:019", 10},
		{"2026-11-22T09:290", "", 10},
		{"", "2026-11-22T09:004", 5},
	} {
		got, err := s.Query(t.Context(), table, "pk", "w1", "sk", tt.from, tt.to)
		if err != nil || len(got) != tt.want {
			t.Errorf("Query [%q, %q] = %d items, %v; want %d", tt.from, tt.to, len(got), err, tt.want)
		}
	}
	// The bound on results holds.
	small, _ := NewStore(client, StoreOptions{MaxQueryItems: 50})
	if _, err := small.Query(t.Context(), table, "pk", "w1", "sk", "", ""); err == nil {
		t.Error("Query over MaxQueryItems succeeded")
	}
}

// flakyPut performs the real PutItem, then pretends the response was lost
// the first time: the ambiguous case a retried conditional put must handle.
type flakyPut struct {
	*dynamodb.Client
	failed bool
}

func (f *flakyPut) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := f.Client.PutItem(ctx, in, opts...)
	if err == nil && !f.failed {
		f.failed = true
		return nil, &types.InternalServerError{Message: aws.String("response lost")}
	}
	return out, err
}

func TestIntegrationPutIfAbsent(t *testing.T) {
	client, table := localTable(t, "sinks-alarms", "alarm", "period")
	s, err := NewStore(client, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	alarm := func(period, worker string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			"alarm":  &types.AttributeValueMemberS{Value: "order-flood"},
			"period": &types.AttributeValueMemberS{Value: period},
			"worker": &types.AttributeValueMemberS{Value: worker},
		}
	}
	for i, tt := range []struct {
		item map[string]types.AttributeValue
		want bool
	}{
		{alarm("2026-11-22T09:41", "w1"), true},
		{alarm("2026-11-22T09:41", "w2"), false},
		{alarm("2026-11-22T09:41", "w1"), false}, // identical, but a first attempt: not ours
		{alarm("2026-11-22T09:42", "w2"), true},
	} {
		got, err := s.PutIfAbsent(t.Context(), table, "alarm", tt.item)
		if err != nil || got != tt.want {
			t.Errorf("put %d = %v, %v; want %v", i, got, err, tt.want)
		}
	}

	// Lost response: the retry fails its condition on our own item, which
	// DynamoDB returns (ALL_OLD), so the put still counts as ours.
	flaky, err := NewStore(&flakyPut{Client: client}, StoreOptions{Retry: retry.Policy{Sleep: func(context.Context, time.Duration) error { return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := flaky.PutIfAbsent(t.Context(), table, "alarm", alarm("2026-11-22T09:43", "w3")); err != nil || !got {
		t.Errorf("ambiguous put = %v, %v; want true", got, err)
	}
	if st := flaky.Stats(); st.Retries != 1 || st.PutsWritten != 1 {
		t.Errorf("flaky stats %+v: want 1 retry, 1 written", st)
	}
}

// TestIntegrationPutIf: a conditional overwrite writes only an existing
// item whose condition attributes match (the alarm claim's token and
// state), on DynamoDB Local.
func TestIntegrationPutIf(t *testing.T) {
	client, table := localTable(t, "sinks-claims", "alarm", "period")
	s, err := NewStore(client, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	item := func(claim, state string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{
			"alarm":  &types.AttributeValueMemberS{Value: "order-flood"},
			"period": &types.AttributeValueMemberS{Value: "2026-11-22T09:41"},
			"claim":  &types.AttributeValueMemberS{Value: claim},
			"state":  &types.AttributeValueMemberS{Value: state},
		}
	}
	cond := func(claim string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"claim": &types.AttributeValueMemberS{Value: claim}}
	}
	if got, err := s.PutIf(t.Context(), table, "alarm", item("a", "publishing"), cond("a")); err != nil || got {
		t.Fatalf("PutIf on a missing item = %v, %v; want false (it must exist)", got, err)
	}
	if _, err := s.PutIfAbsent(t.Context(), table, "alarm", item("a", "claimed")); err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		item, cond map[string]types.AttributeValue
		want       bool
	}{
		{item("a", "publishing"), cond("a"), true},
		{item("b", "publishing"), cond("b"), false}, // not b's claim
		{item("b", "publishing"), cond("a"), true},  // b takes a's claim over
		{item("a", "published"), cond("a"), false},  // a, woken up, lost it
		{item("b", "published"), nil, true},         // no condition but existence
	} {
		got, err := s.PutIf(t.Context(), table, "alarm", tt.item, tt.cond)
		if err != nil || got != tt.want {
			t.Errorf("put %d = %v, %v; want %v", i, got, err, tt.want)
		}
	}
}

func TestIntegrationDeadLetters(t *testing.T) {
	client, table := localTable(t, "sinks-deadletter", "pk", "sk")
	now := time.Date(2026, 11, 22, 9, 41, 0, 0, time.UTC)
	d, err := NewDeadLetterWriter(client, DeadLetterOptions{Table: table, Clock: fixedClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	arrival := time.Date(2026, 11, 22, 9, 40, 59, 123000000, time.UTC)
	big := bytes.Repeat([]byte{0xff, 0x00}, 200*1024) // 400 KiB: must be truncated
	dls := []results.DeadLetter{
		{Stream: "s", ShardID: "shardId-000000000001", Sequence: "49590338271490256608559692538361571095921575989136588898", SubSequence: 0,
			PartitionKey: "10.0.0.1", ArrivalTime: arrival, Reason: "decode combined: truncated request line", Data: []byte("GET /x HTTP/1.1\n")},
		{Stream: "s", ShardID: "shardId-000000000001", Sequence: "49590338271490256608559692538361571095921575989136588898", SubSequence: 7,
			PartitionKey: "10.0.0.1", ArrivalTime: arrival, Reason: "kpl sub-record", Data: []byte{0, 1, 2}},
		{Stream: "s", ShardID: "shardId-000000000002", Sequence: "1", PartitionKey: "k", ArrivalTime: arrival, Reason: "huge", Data: big},
	}
	if err := d.WriteDeadLetters(t.Context(), dls); err != nil {
		t.Fatalf("WriteDeadLetters: %v", err)
	}
	s, _ := NewStore(client, StoreOptions{})
	var got []results.DeadLetter
	var truncated []bool
	for _, shard := range []string{"shardId-000000000001", "shardId-000000000002"} {
		items, err := s.Query(t.Context(), table, "pk", shard, "sk", "", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			dl, tr, err := DecodeDeadLetter(it)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, dl)
			truncated = append(truncated, tr)
			if exp := it["expires_at"].(*types.AttributeValueMemberN).Value; exp != fmt.Sprint(now.Add(14*24*time.Hour).Unix()) {
				t.Errorf("expires_at = %s", exp)
			}
		}
	}
	want := append([]results.DeadLetter(nil), dls...)
	want[2].Data = big[:DefaultMaxDeadLetterData]
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("dead letters read back (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]bool{false, false, true}, truncated); d != "" {
		t.Errorf("truncated flags (-want +got):\n%s", d)
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// A worker that lost its lease (paused past expiry) sends a partial; the
// request is held back in a fault proxy while the new owner, under a
// later tenure, writes the same item; then the stale request lands. It
// must be refused (ErrFenced) and the new owner's item stay, while
// unfenced items of the same batch are written.
func TestIntegrationStaleFencedWriteRefused(t *testing.T) {
	client, table := localTable(t, "sinks-fence", "pk", "sk")
	p, err := faultproxy.New(faultproxy.Config{Target: sinktest.Endpoint(t, "DYNAMODB"),
		Rules: []faultproxy.Rule{{Service: "DynamoDB", Operations: []string{"PutItem"}, Kind: faultproxy.Hold, Rate: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	zombieClient := dynamodb.New(client.Options(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	zombie, err := NewItemWriter(zombieClient, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := NewItemWriter(client, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	partial := func(count string, fence int64) results.Item {
		return results.Item{Table: table, Key: "p", Fence: fence, Attrs: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "topn#60s#2026-12-04T10:00:00Z"}, "sk": &types.AttributeValueMemberS{Value: "shard#s0"},
			"shard": &types.AttributeValueMemberS{Value: "s0"}, "count": &types.AttributeValueMemberN{Value: count},
		}}
	}
	global := results.Item{Table: table, Key: "g", Attrs: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "topn#60s#2026-12-04T10:00:00Z"}, "sk": &types.AttributeValueMemberS{Value: "global"},
	}}
	// The old tenure (token 7) wrote its partial before it was paused.
	if err := owner.WriteItems(t.Context(), []results.Item{partial("10", 7)}); err != nil {
		t.Fatal(err)
	}
	zombieDone := make(chan error, 1)
	go func() { zombieDone <- zombie.WriteItems(t.Context(), []results.Item{partial("15", 7), global}) }()
	deadline := time.Now().Add(20 * time.Second)
	for p.Held() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the zombie's PutItem never reached the proxy")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	// The new owner's tenure (token 9) writes after restoring.
	if err := owner.WriteItems(t.Context(), []results.Item{partial("12", 9)}); err != nil {
		t.Fatal(err)
	}
	p.Release()
	err = <-zombieDone
	var be *sinks.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || !errors.Is(be.Failed[0].Err, ErrFenced) {
		t.Fatalf("stale write: got %v; want one item failed with ErrFenced", err)
	}
	if retryable, permanent := be.Unwritten(); len(retryable) != 0 || len(permanent) != 1 {
		t.Fatalf("fenced failure: retryable %v, permanent %v; want it permanent", retryable, permanent)
	}
	out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": partial("", 0).Attrs["pk"], "sk": partial("", 0).Attrs["sk"]}})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Item["count"].(*types.AttributeValueMemberN).Value; got != "12" {
		t.Fatalf("partial count %s after the stale write; want the new owner's 12", got)
	}
	if got := out.Item[AttrFence].(*types.AttributeValueMemberN).Value; got != "9" {
		t.Fatalf("partial fence %s; want 9", got)
	}
	g, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": global.Attrs["pk"], "sk": global.Attrs["sk"]}})
	if err != nil || g.Item == nil {
		t.Fatalf("unfenced item of the zombie's batch not written: %v", err)
	}
}
