package consumer

import (
	"context"
	"flag"
	"io"
	"net"
	"time"

	"github.com/shardwatch/shardwatch/internal/ops"
)

// runHealthcheck probes the worker's /healthz: the container image has no
// shell or curl, so ECS runs this.
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("SHARDWATCH_OPS_ADDR")
	if def == "" {
		def = "127.0.0.1:9090"
	}
	addr := fs.String("addr", def, "ops address of the worker")
	timeout := fs.Duration("timeout", 3*time.Second, "probe timeout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return ops.Probe(ctx, "http://"+net.JoinHostPort(host, port)+"/healthz", *timeout)
}
