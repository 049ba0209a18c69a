package ddbmeter_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/ddbmeter"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

// Against DynamoDB Local, which applies the service's unit rules: the
// meter sums what every call reports, by table and kind.
func TestMeterSumsReportedUnits(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	var m ddbmeter.Meter
	var hooked float64
	m.OnUnits = func(_ string, _ ddbmeter.Kind, u float64) { hooked += u }
	db := dynamodb.NewFromConfig(testenv.Config(t), m.Options)
	table := testenv.Name(t, "meter")
	testenv.CreateTable(t, table, "pk", "")
	ctx := t.Context()
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

	// 3,000 bytes: 3 write units to put, 3 to update (the item's size).
	big := map[string]types.AttributeValue{"pk": s("a"), "v": s(strings.Repeat("x", 3000))}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: big}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": s("a")},
		UpdateExpression: aws.String("SET w = :w"), ExpressionAttributeValues: map[string]types.AttributeValue{":w": s("1")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: {
		{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"pk": s("b")}}},
		{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"pk": s("c")}}},
	}}}); err != nil {
		t.Fatal(err)
	}
	// A failed condition costs too: counted as 1.
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{"pk": s("b")},
		ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("conditional put: %v", err)
	}
	// Reads: a strongly consistent 3 KB get is 1 unit, an eventually
	// consistent scan of 3 small-to-3 KB items 0.5 or 1.
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": s("a")}, ConsistentRead: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table)}); err != nil {
		t.Fatal(err)
	}
	got := m.Units()
	want := map[ddbmeter.Key]float64{{Table: table, Kind: ddbmeter.Write}: 3 + 3 + 2 + 1, {Table: table, Kind: ddbmeter.Read}: got[ddbmeter.Key{Table: table, Kind: ddbmeter.Read}]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
	if r := got[ddbmeter.Key{Table: table, Kind: ddbmeter.Read}]; r < 1.5 || r > 2 {
		t.Errorf("read units %v, want 1 (get) + 0.5..1 (scan)", r)
	}
	if hooked != got[ddbmeter.Key{Table: table, Kind: ddbmeter.Write}]+got[ddbmeter.Key{Table: table, Kind: ddbmeter.Read}] {
		t.Errorf("OnUnits saw %v units", hooked)
	}
	// A caller's own ReturnConsumedCapacity setting is kept.
	in := &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": s("a")}, ReturnConsumedCapacity: types.ReturnConsumedCapacityIndexes}
	out, err := db.GetItem(ctx, in)
	if err != nil || out.ConsumedCapacity == nil || in.ReturnConsumedCapacity != types.ReturnConsumedCapacityIndexes {
		t.Errorf("INDEXES request: %v %+v", err, out)
	}
}
