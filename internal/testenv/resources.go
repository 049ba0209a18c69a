package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const (
	// readyTimeout bounds waiting for a stream or table to become ACTIVE; the
	// local servers take milliseconds, a loaded CI machine a few seconds.
	readyTimeout = 30 * time.Second
	pollInterval = 25 * time.Millisecond
	// cleanupTimeout bounds each delete in t.Cleanup, which runs after
	// t.Context() is cancelled.
	cleanupTimeout = 30 * time.Second
	// maxNameTestPart keeps names readable and well below the 128-character
	// stream-name limit.
	maxNameTestPart = 32
)

// Name returns a unique lowercase name "prefix-testname-random" made of
// [a-z0-9-], valid for Kinesis streams, DynamoDB tables, SNS topics and SQS
// queues, so concurrent test runs against the shared stack never collide.
func Name(t testing.TB, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random name: %v", err)
	}
	parts := make([]string, 0, 3)
	if p := sanitize(prefix, maxNameTestPart); p != "" {
		parts = append(parts, p)
	}
	if n := sanitize(t.Name(), maxNameTestPart); n != "" {
		parts = append(parts, n)
	}
	return strings.Join(append(parts, hex.EncodeToString(b[:])), "-")
}

// sanitize lowercases s, maps every other character to '-', collapses runs of
// '-' and trims them from both ends, and truncates to max bytes.
func sanitize(s string, max int) string {
	var sb strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			sb.WriteRune(r)
			dash = false
			continue
		}
		if !dash && sb.Len() > 0 {
			sb.WriteByte('-')
			dash = true
		}
	}
	out := sb.String()
	if len(out) > max {
		out = out[:max]
	}
	return strings.Trim(out, "-")
}

// CreateStream creates a Kinesis stream with the given shard count, waits until
// it is ACTIVE and deletes it when the test ends. It returns the stream ARN.
func CreateStream(t testing.TB, name string, shards int32) string {
	t.Helper()
	client := Kinesis(t)
	ctx := t.Context()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{
		StreamName: aws.String(name),
		ShardCount: aws.Int32(shards),
	}); err != nil {
		t.Fatalf("testenv: create stream %s: %v", name, err)
	}
	t.Cleanup(func() { DeleteStream(t, name) })
	var arn string
	err := poll(ctx, func() (bool, error) {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return false, err
		}
		arn = aws.ToString(out.StreamDescriptionSummary.StreamARN)
		return out.StreamDescriptionSummary.StreamStatus == kintypes.StreamStatusActive, nil
	})
	if err != nil {
		t.Fatalf("testenv: stream %s not ACTIVE: %v", name, err)
	}
	return arn
}

// CreateTable creates an on-demand DynamoDB table with a string partition key
// and, when sortKey is not empty, a string sort key; waits until it is ACTIVE
// and deletes it when the test ends.
func CreateTable(t testing.TB, name, partitionKey, sortKey string) {
	t.Helper()
	client := DynamoDB(t)
	ctx := t.Context()
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String(partitionKey), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String(partitionKey), KeyType: ddbtypes.KeyTypeHash},
		},
	}
	if sortKey != "" {
		in.AttributeDefinitions = append(in.AttributeDefinitions,
			ddbtypes.AttributeDefinition{AttributeName: aws.String(sortKey), AttributeType: ddbtypes.ScalarAttributeTypeS})
		in.KeySchema = append(in.KeySchema,
			ddbtypes.KeySchemaElement{AttributeName: aws.String(sortKey), KeyType: ddbtypes.KeyTypeRange})
	}
	if _, err := client.CreateTable(ctx, in); err != nil {
		t.Fatalf("testenv: create table %s: %v", name, err)
	}
	t.Cleanup(func() { DeleteTable(t, name) })
	err := poll(ctx, func() (bool, error) {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return false, err
		}
		return out.Table.TableStatus == ddbtypes.TableStatusActive, nil
	})
	if err != nil {
		t.Fatalf("testenv: table %s not ACTIVE: %v", name, err)
	}
}

// CreateTopic creates an SNS topic, deletes it when the test ends and returns
// its ARN.
func CreateTopic(t testing.TB, name string) string {
	t.Helper()
	client := SNS(t)
	out, err := client.CreateTopic(t.Context(), &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("testenv: create topic %s: %v", name, err)
	}
	arn := aws.ToString(out.TopicArn)
	t.Cleanup(func() { DeleteTopic(t, arn) })
	return arn
}

// SubscribeQueue creates an SQS queue subscribed to topicARN with raw message
// delivery (the SQS body is the published message itself), deletes it when
// the test ends and returns the queue URL. Tests read what was published with
// SQS(t).ReceiveMessage.
func SubscribeQueue(t testing.TB, topicARN string) string {
	t.Helper()
	sq := SQS(t)
	ctx := t.Context()
	name := Name(t, "q")
	out, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("testenv: create queue %s: %v", name, err)
	}
	queueURL := aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := sq.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(queueURL)}); err != nil {
			t.Errorf("testenv: delete queue %s: %v", queueURL, err)
		}
	})
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("testenv: queue %s attributes: %v", name, err)
	}
	if _, err := SNS(t).Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:   aws.String(topicARN),
		Protocol:   aws.String("sqs"),
		Endpoint:   aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{"RawMessageDelivery": "true"},
	}); err != nil {
		t.Fatalf("testenv: subscribe %s to %s: %v", name, topicARN, err)
	}
	return queueURL
}

// DeleteStream deletes a stream if it exists, reporting other failures with
// t.Errorf. It does not use t.Context(), so it works inside t.Cleanup.
func DeleteStream(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_, err := Kinesis(t).DeleteStream(ctx, &kinesis.DeleteStreamInput{
		StreamName:              aws.String(name),
		EnforceConsumerDeletion: aws.Bool(true),
	})
	var nf *kintypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		t.Errorf("testenv: delete stream %s: %v", name, err)
	}
}

// DeleteTable deletes a table if it exists, reporting other failures with
// t.Errorf. It does not use t.Context(), so it works inside t.Cleanup.
func DeleteTable(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_, err := DynamoDB(t).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	var nf *ddbtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		t.Errorf("testenv: delete table %s: %v", name, err)
	}
}

// TopicARN is the ARN the local stack gives the topic called name.
func TopicARN(name string) string {
	return "arn:aws:sns:" + Region + ":" + AccountID + ":" + name
}

// DeleteTopic deletes a topic by ARN, reporting failures with t.Errorf (SNS
// DeleteTopic succeeds for a topic that does not exist). It does not use
// t.Context(), so it works inside t.Cleanup.
func DeleteTopic(t testing.TB, arn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if _, err := SNS(t).DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(arn)}); err != nil {
		t.Errorf("testenv: delete topic %s: %v", arn, err)
	}
}

// poll calls done every pollInterval until it reports true, returns an error,
// or readyTimeout passes.
func poll(ctx context.Context, done func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", readyTimeout, ctx.Err())
		case <-tick.C:
		}
	}
}
