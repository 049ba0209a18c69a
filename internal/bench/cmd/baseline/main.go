// Command baseline runs the counting vmware-go-kcl-v2 consumer that
// `make bench` measures shardwatch against (see package baseline). It
// reads the AWS endpoints from the standard AWS_* variables.
//
//	baseline --app APP --stream STREAM [--audit-log FILE] [--max-leases N]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/awsenv"
	"github.com/shardwatch/shardwatch/internal/bench/baseline"
	"github.com/shardwatch/shardwatch/internal/engine"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host, _ := os.Hostname()
	cfg := baseline.Config{}
	fs.StringVar(&cfg.App, "app", "", "application name (the lease table)")
	fs.StringVar(&cfg.Stream, "stream", "", "Kinesis stream")
	fs.StringVar(&cfg.Region, "region", firstNonEmpty(getenv("AWS_REGION"), "us-east-1"), "AWS region")
	fs.StringVar(&cfg.WorkerID, "worker-id", fmt.Sprintf("%s-%d", host, os.Getpid()), "worker id")
	fs.StringVar(&cfg.InitialPosition, "initial-position", "TRIM_HORIZON", "LATEST or TRIM_HORIZON")
	fs.DurationVar(&cfg.ShardSync, "shard-sync-interval", 2*time.Second, "shard sync interval (the bare engine lists shards and reads leases per pass, so not the consumer's 100ms)")
	fs.DurationVar(&cfg.FailoverTime, "failover-time", 10*time.Second, "lease failover time (as the consumer's default)")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", 250*time.Millisecond, "wait between polls of an idle shard")
	fs.IntVar(&cfg.MaxRecords, "max-records", 10000, "records per GetRecords call")
	fs.IntVar(&cfg.MaxLeases, "max-leases", 0, "most leases this worker holds (0 = no limit)")
	auditPath := fs.String("audit-log", "", "append every record's position to this file (the consumer's audit format)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := zap.NewProduction(zap.ErrorOutput(zap.CombineWriteSyncers(os.Stderr)))
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr
	awsCfg, err := awsenv.Load(ctx, cfg.Region)
	if err != nil {
		return err
	}
	ddb := dynamodb.NewFromConfig(awsCfg, awsenv.LocalDynamoDB(getenv))
	d := baseline.Deps{Kinesis: kinesis.NewFromConfig(awsCfg), DynamoDB: ddb, Logger: log}
	if *auditPath != "" {
		if d.Audit, err = engine.OpenAuditLog(*auditPath); err != nil {
			return err
		}
		defer d.Audit.Close()
	}
	counts, err := baseline.Run(ctx, cfg, d)
	if err != nil {
		return err
	}
	log.Info("baseline stopped", zap.Int64("records", counts.Records.Load()), zap.Int64("batches", counts.Batches.Load()),
		zap.Int64("checkpoints", counts.Checkpoints.Load()), zap.Int64("checkpoint_errors", counts.CheckpointErrors.Load()))
	return nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
