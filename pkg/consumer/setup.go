package consumer

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/awsenv"
	"github.com/shardwatch/shardwatch/internal/setup"
)

// runSetup creates the application's stream, tables and alarm topic when
// missing and waits until they are ACTIVE. It is idempotent and safe to
// run from several processes at once; it works unchanged on real AWS.
func runSetup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	app := fs.String("app", getenv("SHARDWATCH_APP"), "application name (lease table APP, tables APP-*, topic APP-alarms)")
	stream := fs.String("stream", getenv("SHARDWATCH_STREAM"), "Kinesis stream to create when missing")
	defShards := 4
	if v := getenv("SHARDWATCH_SHARDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("env SHARDWATCH_SHARDS: not an integer: %q", v)
		}
		defShards = n
	}
	shards := fs.Int("shards", defShards, "shard count of a new stream (0: do not create the stream)")
	fifo := fs.Bool("fifo-topic", getenv("SHARDWATCH_FIFO_TOPIC") == "true",
		"create the alarm topic as SNS FIFO topic APP-alarms.fifo: exactly one order-flood message per period, SQS FIFO subscribers only")
	region := fs.String("region", firstNonEmpty(getenv("SHARDWATCH_REGION"), getenv("AWS_REGION"), "us-east-1"), "AWS region")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *app == "":
		return fmt.Errorf("setup: --app is required")
	case *shards < 0 || *shards > 10000:
		return fmt.Errorf("setup: --shards must be between 0 and 10000")
	}
	var st *setup.Stream
	if *stream != "" && *shards > 0 {
		st = &setup.Stream{Name: *stream, Shards: int32(*shards)}
	}
	cfg, err := awsenv.Load(ctx, *region)
	if err != nil {
		return err
	}
	log, err := newLogger("console", "info", stderr)
	if err != nil {
		return err
	}
	plan := setup.FleetPlan(*app, st)
	if *fifo {
		plan = setup.WithFIFOTopic(plan)
	}
	res, err := setup.Apply(ctx, setup.Clients{
		Kinesis:  kinesis.NewFromConfig(cfg),
		DynamoDB: dynamodb.NewFromConfig(cfg, awsenv.LocalDynamoDB(getenv)),
		SNS:      sns.NewFromConfig(cfg),
	}, plan, log.Named("setup"))
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	log.Info("resources ready", zap.Strings("created", res.Created))
	if res.StreamARN != "" {
		fmt.Fprintf(stdout, "stream_arn=%s\n", res.StreamARN)
	}
	for name, arn := range res.TopicARNs {
		fmt.Fprintf(stdout, "topic_arn=%s # %s\n", arn, name)
	}
	return nil
}
