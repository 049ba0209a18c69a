// Command producer writes traffic into a Kinesis stream for shardwatch:
//
//	producer replay [flags] FILE...   replay access logs, CloudFront logs or the orders CSV
//	producer generate [flags]         synthetic clickstream hits and orders
//	producer collect [flags]          HTTP tracking-pixel collector
//
// Every mode batches records with PutRecords (500 records / 5 MiB per
// call), retries only the entries that failed, optionally packs records
// into KPL aggregates (--aggregate), prints progress on stderr every 2 s and
// a summary at the end, and exits non-zero when any record could not be
// written.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: producer <mode> [flags]

modes:
  replay FILE...  send each line of access logs (combined), CloudFront logs or the
                  Online Retail orders CSV as one record, at the original pace
                  scaled by --speed (or --speed max)
  generate        synthetic clickstream hits and orders at --rate, with bots and
                  optional order floods, reproducible with --seed
  collect         HTTP collector: GET/POST /collect and /collect.gif become
                  clickstream records

Run "producer <mode> -h" for the flags of a mode.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], defaultEnv())
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "producer:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return errors.New("no mode")
	}
	switch args[0] {
	case "replay":
		return runReplay(ctx, args[1:], e)
	case "generate":
		return runGenerate(ctx, args[1:], e)
	case "collect":
		return runCollect(ctx, args[1:], e)
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, usage)
		return nil
	default:
		fmt.Fprint(e.stderr, usage)
		return fmt.Errorf("unknown mode %q", args[0])
	}
}
