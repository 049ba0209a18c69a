// Command myconsumer is the shardwatch consumer with one more plugin,
// statusmix: every consumer command (run, setup, status, replay, query,
// dashboard, healthcheck) with the built-in processors and statusmix.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardwatch/shardwatch/examples/statusmix"
	"github.com/shardwatch/shardwatch/pkg/consumer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := consumer.Main(ctx, os.Args, consumer.WithPlugins(statusmix.Plugin()))
	stop()
	os.Exit(code)
}
