// Command chaos runs the fleet's fault-injection harness (package
// internal/chaos) and prints its report; `make chaos` runs it. Parameters
// come from the environment:
//
//	SHARDWATCH_CHAOS_SEED      seed of the workload and fault schedule (default: time)
//	SHARDWATCH_CHAOS_WORKERS   worker processes (3)
//	SHARDWATCH_CHAOS_SHARDS    shards (4)
//	SHARDWATCH_CHAOS_FAULTS    number of faults drawn from every kind (10), or a
//	                           comma list of kinds: kill,term,stop,restart-dynamodb,restart-kinesis
//	SHARDWATCH_CHAOS_RATE      event seconds produced per wall second (10; 20 hits each)
//	SHARDWATCH_CHAOS_DIR       work directory (default: a new temp dir, kept on failure)
//
// It builds the consumer itself (go build ./cmd/consumer) and runs the
// stack through scripts/localstack on free ports of its own: the shared
// default-port stack is never touched. Exit status 1 when a check fails.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/shardwatch/shardwatch/internal/chaos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// 50 faults: about 10 of each kind, enough for a median and a max of
	// the recovery time per kind (issue 15).
	cfg := chaos.Config{Seed: uint64(time.Now().UnixNano()), FaultCount: 50, Log: os.Stderr,
		Topic: chaos.TopicKind(os.Getenv("SHARDWATCH_CHAOS_TOPIC"))}
	if v := os.Getenv("SHARDWATCH_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SHARDWATCH_CHAOS_SEED: %w", err)
		}
		cfg.Seed = s
	}
	ints := map[string]*int{"SHARDWATCH_CHAOS_WORKERS": &cfg.Workers, "SHARDWATCH_CHAOS_SHARDS": &cfg.Shards}
	for k, p := range ints {
		if v := os.Getenv(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			*p = n
		}
	}
	if v := os.Getenv("SHARDWATCH_CHAOS_FAULTS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			cfg.FaultCount = n
		} else if cfg.Faults, err = chaos.ParseFaults(v); err != nil {
			return fmt.Errorf("SHARDWATCH_CHAOS_FAULTS: %w", err)
		}
	}
	if v := os.Getenv("SHARDWATCH_CHAOS_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("SHARDWATCH_CHAOS_RATE: %w", err)
		}
		cfg.Rate = r
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cfg.Script = filepath.Join(root, "scripts", "localstack")
	cfg.Dir = os.Getenv("SHARDWATCH_CHAOS_DIR")
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "shardwatch-chaos-"); err != nil {
			return err
		}
	}
	cfg.ConsumerBin = filepath.Join(cfg.Dir, "consumer")
	build := exec.CommandContext(ctx, "go", "build", "-o", cfg.ConsumerBin, "./cmd/consumer")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build consumer: %w", err)
	}
	fmt.Fprintf(os.Stderr, "chaos: seed %d, work dir %s\n", cfg.Seed, cfg.Dir)
	rep, err := chaos.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Print(rep.String())
	if !rep.OK() {
		return fmt.Errorf("%d checks failed; logs in %s (rerun with SHARDWATCH_CHAOS_SEED=%d)", len(rep.Problems), cfg.Dir, cfg.Seed)
	}
	if os.Getenv("SHARDWATCH_CHAOS_DIR") == "" {
		os.RemoveAll(cfg.Dir)
	}
	return nil
}

// repoRoot walks up to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
