// Command consumer is a shardwatch worker: it leases the shards of one
// Kinesis stream with other workers of the same application, runs every
// record through the configured processors and writes the results to
// DynamoDB, SNS and CloudWatch.
//
//	consumer run --config FILE     run the worker until SIGINT/SIGTERM
//	consumer setup --config FILE   create the stream, tables and topic if missing
//	consumer status --app APP      show which worker holds which shard
//	consumer healthcheck           probe /healthz (the ECS container health check)
//	consumer query RESULT --app APP  read results back (orders, histogram)
//	consumer replay --config FILE FILES...  run the processors over local files, offline
//	consumer dashboard --app APP   live dashboard of the result tables (127.0.0.1:8088)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardwatch/shardwatch/internal/config"
)

const usage = `usage: consumer <command> [flags]

commands:
  run          run the worker (see "consumer run -h" for every setting)
  setup        create the stream, tables and SNS topic when missing, then exit
  status       show which worker holds which shard (--app, --workers, --watch)
  healthcheck  exit 0 when the local worker's /healthz answers, else 1
  query        read results back: orders (--customer), histogram (--window, --host)
  replay       run the configured processors over local files, offline (--config FILE FILES...)
  dashboard    serve a live dashboard of the result tables (--app, --addr 127.0.0.1:8088)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// A misspelt SHARDWATCH_* variable would otherwise be ignored silently.
	err := config.CheckEnviron(os.Environ())
	if err == nil {
		err = run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "consumer:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "run":
		return runWorker(ctx, args[1:], getenv, stdout, stderr)
	case "setup":
		return runSetup(ctx, args[1:], getenv, stdout, stderr)
	case "status":
		return runStatus(ctx, args[1:], getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], getenv, stderr)
	case "query":
		return runQuery(ctx, args[1:], getenv, stdout, stderr)
	case "replay":
		return runReplay(ctx, args[1:], getenv, stdout, stderr)
	case "dashboard":
		return runDashboard(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
