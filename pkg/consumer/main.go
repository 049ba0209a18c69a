package consumer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/processors/builtin"
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

// Option configures Main.
type Option func(*options)

type options struct {
	plugins        []processors.Plugin
	environ        []string
	getenv         func(string) string
	stdout, stderr io.Writer
}

// WithPlugins adds processor plugins to the built-in ones; a name used
// twice is an error at start.
func WithPlugins(plugins ...processors.Plugin) Option {
	return func(o *options) { o.plugins = append(o.plugins, plugins...) }
}

// WithEnv replaces the process environment (os.Environ) seen by Main, in
// "KEY=value" form (tests).
func WithEnv(environ []string) Option {
	return func(o *options) {
		o.environ = environ
		m := make(map[string]string, len(environ))
		for _, kv := range environ {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
		o.getenv = func(k string) string { return m[k] }
	}
}

// WithOutput replaces os.Stdout and os.Stderr (tests).
func WithOutput(stdout, stderr io.Writer) Option {
	return func(o *options) { o.stdout, o.stderr = stdout, stderr }
}

// Main runs the consumer command line (args[0] is the program name) with
// the built-in processors and the plugins of WithPlugins, and returns the
// exit status: 0, or 1 after printing the error to stderr. Unknown
// SHARDWATCH_* variables fail before any command runs. Call it from main
// with a context cancelled on SIGINT and SIGTERM:
//
//	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
//	code := consumer.Main(ctx, os.Args, consumer.WithPlugins(hits.Plugin()))
//	stop()
//	os.Exit(code)
func Main(ctx context.Context, args []string, opts ...Option) int {
	o := options{environ: os.Environ(), getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr}
	for _, opt := range opts {
		opt(&o)
	}
	// A misspelt SHARDWATCH_* variable would otherwise be ignored silently.
	err := config.CheckEnviron(o.environ)
	if err == nil {
		c := &cli{plugins: append(builtin.Plugins(), o.plugins...)}
		err = c.run(ctx, args[min(1, len(args)):], o.getenv, o.stdout, o.stderr)
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(o.stderr, "consumer:", err)
		}
		return 1
	}
	return 0
}

// cli is what the commands share.
type cli struct {
	plugins []processors.Plugin
}

func (c *cli) run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "run":
		return c.runWorker(ctx, args[1:], getenv, stdout, stderr)
	case "setup":
		return runSetup(ctx, args[1:], getenv, stdout, stderr)
	case "status":
		return runStatus(ctx, args[1:], getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], getenv, stderr)
	case "query":
		return runQuery(ctx, args[1:], getenv, stdout, stderr)
	case "replay":
		return c.runReplay(ctx, args[1:], getenv, stdout, stderr)
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
