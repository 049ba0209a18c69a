package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/awsenv"
	"github.com/shardwatch/shardwatch/internal/setup"
)

// StackDefaults are the endpoints and credentials of scripts/localstack on
// its default ports. The command sets each one the environment leaves
// unset, for the harness's clients and the workers it starts.
func StackDefaults() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_KINESIS":  "http://127.0.0.1:4567",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4569",
		"AWS_ENDPOINT_URL_SNS":      "http://127.0.0.1:4575",
		"AWS_ENDPOINT_URL_SQS":      "http://127.0.0.1:4575",
		"AWS_ACCESS_KEY_ID":         "local",
		"AWS_SECRET_ACCESS_KEY":     "local",
		"AWS_REGION":                "us-east-1",
		"AWS_EC2_METADATA_DISABLED": "true",
	}
}

// clients talk to the stack (endpoints from the AWS_* variables).
type clients struct {
	kinesis *kinesis.Client
	ddb     *dynamodb.Client
	sns     *sns.Client
	sqs     *sqs.Client
}

func newClients(ctx context.Context) (*clients, error) {
	cfg, err := awsenv.Load(ctx, os.Getenv("AWS_REGION"))
	if err != nil {
		return nil, err
	}
	return &clients{
		kinesis: kinesis.NewFromConfig(cfg),
		// DynamoDB Local sends zero response checksums.
		ddb: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }),
		sns: sns.NewFromConfig(cfg),
		sqs: sqs.NewFromConfig(cfg),
	}, nil
}

// resources of one run: a stream and an application, named uniquely.
type resources struct {
	c        *clients
	stream   string
	app      string
	topicARN string
	queueURL string
	tables   []string
}

func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// createResources creates the run's stream (shards), the application's
// tables and alarm topic, and an SQS queue subscribed to the topic (to
// time alarms).
func createResources(ctx context.Context, c *clients, prefix string, shards int, log *zap.Logger) (*resources, error) {
	suffix := randomSuffix()
	r := &resources{c: c, stream: prefix + "-" + suffix, app: prefix + "-" + suffix}
	plan := setup.FleetPlan(r.app, &setup.Stream{Name: r.stream, Shards: int32(shards)})
	plan.WaitTimeout = 2 * time.Minute
	for _, t := range plan.Tables {
		r.tables = append(r.tables, t.Name)
	}
	res, err := setup.Apply(ctx, setup.Clients{Kinesis: c.kinesis, DynamoDB: c.ddb, SNS: c.sns}, plan, log)
	if err != nil {
		r.delete(context.WithoutCancel(ctx), log)
		return nil, fmt.Errorf("create resources: %w", err)
	}
	r.topicARN = res.TopicARNs[r.app+setup.SuffixAlarmTopic]
	if r.topicARN == "" {
		r.delete(context.WithoutCancel(ctx), log)
		return nil, errors.New("create resources: no topic ARN")
	}
	q, err := c.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(r.app + "-alarms-q")})
	if err != nil {
		r.delete(context.WithoutCancel(ctx), log)
		return nil, fmt.Errorf("create queue: %w", err)
	}
	r.queueURL = aws.ToString(q.QueueUrl)
	attrs, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err == nil {
		_, err = c.sns.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn: aws.String(r.topicARN), Protocol: aws.String("sqs"),
			Endpoint:   aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
			Attributes: map[string]string{"RawMessageDelivery": "true"},
		})
	}
	if err != nil {
		r.delete(context.WithoutCancel(ctx), log)
		return nil, fmt.Errorf("subscribe alarm queue: %w", err)
	}
	return r, nil
}

// delete removes everything the run created; failures are logged (a
// leftover must not fail the measurement).
func (r *resources) delete(ctx context.Context, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var nfStream *kintypes.ResourceNotFoundException
	if _, err := r.c.kinesis.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(r.stream), EnforceConsumerDeletion: aws.Bool(true)}); err != nil && !errors.As(err, &nfStream) {
		log.Warn("delete stream", zap.String("stream", r.stream), zap.Error(err))
	}
	for _, t := range r.tables {
		var nf *ddbtypes.ResourceNotFoundException
		if _, err := r.c.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(t)}); err != nil && !errors.As(err, &nf) {
			log.Warn("delete table", zap.String("table", t), zap.Error(err))
		}
	}
	if r.topicARN != "" {
		if _, err := r.c.sns.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(r.topicARN)}); err != nil {
			log.Warn("delete topic", zap.String("topic", r.topicARN), zap.Error(err))
		}
	}
	if r.queueURL != "" {
		if _, err := r.c.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(r.queueURL)}); err != nil {
			log.Warn("delete queue", zap.String("queue", r.queueURL), zap.Error(err))
		}
	}
}

// leasesHeld counts the shards whose lease row names one of workers.
func (r *resources) leasesHeld(ctx context.Context, workers map[string]bool) (int, error) {
	held := 0
	var start map[string]ddbtypes.AttributeValue
	for {
		out, err := r.c.ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(r.app), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return 0, fmt.Errorf("scan lease table: %w", err)
		}
		for _, it := range out.Items {
			if v, ok := it["AssignedTo"].(*ddbtypes.AttributeValueMemberS); ok && workers[v.Value] {
				held++
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return held, nil
		}
		start = out.LastEvaluatedKey
	}
}
