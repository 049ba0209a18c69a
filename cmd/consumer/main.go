// Command consumer is the shardwatch worker with the built-in processors;
// see package pkg/consumer for its commands and for building a consumer
// with your own plugins.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shardwatch/shardwatch/pkg/consumer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := consumer.Main(ctx, os.Args)
	stop()
	os.Exit(code)
}
