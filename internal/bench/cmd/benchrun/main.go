// Command benchrun is the Go half of scripts/bench (`make bench`):
//
//	benchrun e2e --out DIR --consumer BIN --baseline BIN [flags]
//	    run the end-to-end measurement on the local stack; writes
//	    DIR/results.json, per-run logs and the consumer's pprof profiles
//	benchrun report --bench FILE [--benchstat FILE] [--e2e DIR] [--out FILE] [--docs FILE]
//	    write the Markdown report and regenerate docs/performance.md from it
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/bench/e2e"
	"github.com/shardwatch/shardwatch/internal/bench/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: benchrun e2e|cost|report [flags]")
	}
	switch args[0] {
	case "e2e":
		return runE2E(ctx, args[1:], stderr)
	case "cost":
		return runCost(ctx, args[1:], stderr)
	case "report":
		return runReport(args[1:], stderr)
	default:
		return fmt.Errorf("unknown command %q (want e2e or report)", args[0])
	}
}

// runCost measures DynamoDB units per shard-second (see e2e.RunCost).
func runCost(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := e2e.CostDefaults()
	fs := flag.NewFlagSet("cost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.OutDir, "out", "", "output directory")
	bins := fs.String("consumer", "", "consumer binaries to compare, label=path[@config], comma-separated (runs alternate)")
	fs.StringVar(&cfg.DataDir, "data", "../shared/data", "shared data directory")
	fs.StringVar(&cfg.Example, "config", "deploy/consumer.example.yaml", "worker configuration measured (its processors and flush settings)")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "put rate, records/s over the whole stream")
	fs.IntVar(&cfg.Shards, "shards", cfg.Shards, "stream shards")
	fs.IntVar(&cfg.Repeat, "repeat", cfg.Repeat, "repetitions of every build")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "put time before the measurement starts")
	fs.DurationVar(&cfg.Seconds, "seconds", cfg.Seconds, "measured time")
	fs.DurationVar(&cfg.BurstEvery, "burst-every", cfg.BurstEvery, "order burst period")
	md := fs.String("md", "", "write the Markdown table here too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, b := range strings.Split(*bins, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		label, path, ok := strings.Cut(b, "=")
		if !ok {
			label, path = filepath.Base(b), b
		}
		path, conf, hasConf := strings.Cut(path, "@")
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		if hasConf {
			if conf, err = filepath.Abs(conf); err != nil {
				return err
			}
			abs += "@" + conf
		}
		cfg.Bins = append(cfg.Bins, label+"="+abs)
	}
	var err error
	for _, p := range []*string{&cfg.OutDir, &cfg.DataDir, &cfg.Example} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	for k, v := range e2e.StackDefaults() {
		if os.Getenv(k) == "" {
			if err := os.Setenv(k, v); err != nil {
				return err
			}
		}
	}
	log, err := zap.NewDevelopment(zap.ErrorOutput(zap.CombineWriteSyncers(os.Stderr)))
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr
	runs, err := e2e.RunCost(ctx, cfg, log)
	table := e2e.CostTable(runs)
	fmt.Fprint(stderr, table)
	if *md != "" {
		if werr := os.WriteFile(*md, []byte(table), 0o644); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

func runE2E(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := e2e.Defaults()
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.OutDir, "out", "", "output directory")
	fs.StringVar(&cfg.ConsumerBin, "consumer", "", "consumer binary")
	fs.StringVar(&cfg.BaselineBin, "baseline", "", "baseline binary")
	fs.StringVar(&cfg.DataDir, "data", "../shared/data", "shared data directory")
	fs.IntVar(&cfg.Records, "records", cfg.Records, "records per phase")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "live phase put rate, records/s")
	fs.IntVar(&cfg.Shards, "shards", cfg.Shards, "stream shards")
	fs.IntVar(&cfg.Repeat, "repeat", cfg.Repeat, "repetitions of every (consumer, fleet size)")
	fs.DurationVar(&cfg.Poll, "poll", cfg.Poll, "poll interval of both consumers")
	fs.IntVar(&cfg.MaxRecords, "max-records", cfg.MaxRecords, "GetRecords limit of both consumers")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", 0, "the consumer's flush_interval (0: its default)")
	fs.BoolVar(&cfg.Profile, "profile", cfg.Profile, "take pprof profiles of the first consumer run")
	workers := fs.String("workers", "1,2", "fleet sizes, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Workers = nil
	for _, w := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil {
			return fmt.Errorf("--workers: %q is not a number", w)
		}
		cfg.Workers = append(cfg.Workers, n)
	}
	var err error
	for _, p := range []*string{&cfg.OutDir, &cfg.ConsumerBin, &cfg.BaselineBin, &cfg.DataDir} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	// The harness's clients and the workers it starts read the stack's
	// endpoints from the environment.
	for k, v := range e2e.StackDefaults() {
		if os.Getenv(k) == "" {
			if err := os.Setenv(k, v); err != nil {
				return err
			}
		}
	}
	log, err := zap.NewDevelopment(zap.ErrorOutput(zap.CombineWriteSyncers(os.Stderr)))
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr
	start := time.Now()
	s, err := e2e.RunSession(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("end-to-end session done", zap.Int("runs", len(s.Runs)), zap.Duration("took", time.Since(start).Round(time.Second)))
	return nil
}

func runReport(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	benchPath := fs.String("bench", "", "raw `go test -bench` output")
	statPath := fs.String("benchstat", "", "benchstat summary (optional)")
	e2eDir := fs.String("e2e", "", "end-to-end output directory with results.json (optional)")
	profDir := fs.String("profiles", "", "directory of `go tool pprof -top` texts (*.top) to include (optional)")
	out := fs.String("out", "", "report file to write (default stdout)")
	docs := fs.String("docs", "", "docs/performance.md to regenerate (its hand-written parts are kept)")
	command := fs.String("command", "make bench", "how the run was started, for the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	in := report.Inputs{Generated: time.Now(), Command: *command, Profiles: map[string]string{}}
	if *benchPath == "" {
		return errors.New("report: --bench is required")
	}
	f, err := os.Open(*benchPath)
	if err != nil {
		return err
	}
	in.Bench, err = report.ParseBench(f)
	f.Close()
	if err != nil {
		return err
	}
	if *statPath != "" {
		b, err := os.ReadFile(*statPath)
		if err != nil {
			return err
		}
		in.Benchstat = string(b)
	}
	if *e2eDir != "" {
		b, err := os.ReadFile(filepath.Join(*e2eDir, e2e.ResultsFile))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		default:
			in.Session = &e2e.Session{}
			if err := json.Unmarshal(b, in.Session); err != nil {
				return fmt.Errorf("%s: %w", e2e.ResultsFile, err)
			}
		}
	}
	if *profDir != "" {
		tops, _ := filepath.Glob(filepath.Join(*profDir, "*.top"))
		for _, t := range tops {
			b, err := os.ReadFile(t)
			if err != nil {
				return err
			}
			if len(strings.TrimSpace(string(b))) > 0 {
				in.Profiles[strings.TrimSuffix(filepath.Base(t), ".top")] = string(b)
			}
		}
	}
	block := report.Generate(in)
	doc := ""
	if *docs != "" {
		b, err := os.ReadFile(*docs)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		doc = string(b)
	}
	if doc == "" {
		doc = "# Performance\n"
	}
	full, err := report.Splice(doc, block)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = io.WriteString(os.Stdout, full)
		return err
	}
	if err := os.WriteFile(*out, []byte(full), 0o644); err != nil {
		return err
	}
	if *docs != "" {
		return os.WriteFile(*docs, []byte(full), 0o644)
	}
	return nil
}
