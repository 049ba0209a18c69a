// Package consumer is the shardwatch consumer command as a library, so a
// user's own main can add processor plugins and still get every command:
//
//	func main() {
//		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
//		code := consumer.Main(ctx, os.Args, consumer.WithPlugins(hits.Plugin()))
//		stop()
//		os.Exit(code)
//	}
//
// The consumer is a shardwatch worker: it leases the shards of one
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
package consumer
