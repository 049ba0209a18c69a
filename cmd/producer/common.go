package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shardwatch/shardwatch/internal/putter"
	"github.com/shardwatch/shardwatch/internal/traffic"
	"github.com/shardwatch/shardwatch/pkg/kpl"
)

// errRecordsFailed makes the exit status non-zero when records were lost.
var errRecordsFailed = errors.New("records not written")

// env is what the modes take from the process; tests replace parts.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// newClient builds the Kinesis client for region.
	newClient func(ctx context.Context, region string) (putter.Client, error)
	listen    func(ctx context.Context, addr string) (net.Listener, error)
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
}

func defaultEnv() env {
	return env{
		getenv:    os.Getenv,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		newClient: newKinesisClient,
		listen: func(ctx context.Context, addr string) (net.Listener, error) {
			var lc net.ListenConfig
			return lc.Listen(ctx, "tcp", addr)
		},
		now:   time.Now,
		sleep: sleepCtx,
	}
}

// newKinesisClient loads the standard AWS configuration (environment,
// shared config, AWS_ENDPOINT_URL_KINESIS for the local stack). The SDK's
// own retries are off: the putter retries failed entries itself, and two
// layers would multiply the attempts.
func newKinesisClient(ctx context.Context, region string) (putter.Client, error) {
	opts := []func(*config.LoadOptions) error{}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: set --region or AWS_REGION")
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} }), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// common holds the flags every mode shares.
type common struct {
	stream, region  string
	partitionKey    string
	keyMode         traffic.KeyMode
	aggregate       bool
	aggMaxBytes     int
	aggMaxRecords   int
	buffer          int
	concurrency     int
	linger          time.Duration
	maxAttempts     int
	progress        time.Duration
	shutdownTimeout time.Duration
	logFormat       string
}

func (c *common) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.stream, "stream", getenv("SHARDWATCH_STREAM"), "Kinesis stream name (env SHARDWATCH_STREAM)")
	fs.StringVar(&c.region, "region", getenv("AWS_REGION"), "AWS region (env AWS_REGION)")
	fs.StringVar(&c.partitionKey, "partition-key", "ip", "partition key: ip|session|customer|random (random when the field is empty)")
	fs.BoolVar(&c.aggregate, "aggregate", false,
		"pack records into KPL aggregated records; an aggregate lands on the shard of its first record's key, so per-key shard affinity is lost")
	fs.IntVar(&c.aggMaxBytes, "aggregate-max-bytes", kpl.MaxRecordBytes, "largest aggregated record, partition key included")
	fs.IntVar(&c.aggMaxRecords, "aggregate-max-records", kpl.DefaultMaxRecords, "most user records per aggregated record")
	fs.IntVar(&c.buffer, "buffer", 10_000, "records buffered before producers wait (collect: answer 503)")
	fs.IntVar(&c.concurrency, "concurrency", 4, "PutRecords calls in flight")
	fs.DurationVar(&c.linger, "linger", 100*time.Millisecond, "how long a partial batch waits for more records")
	fs.IntVar(&c.maxAttempts, "max-attempts", 8, "PutRecords attempts per record before it counts as failed")
	fs.DurationVar(&c.progress, "progress", 2*time.Second, "progress line interval on stderr (0 = off)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", envDuration(getenv, "SHARDWATCH_SHUTDOWN_TIMEOUT", 25*time.Second),
		"after SIGINT/SIGTERM, how long buffered records may take to drain (env SHARDWATCH_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.logFormat, "log-format", firstNonEmpty(getenv("SHARDWATCH_LOG_FORMAT"), "console"), "log format: json|console (env SHARDWATCH_LOG_FORMAT)")
}

func (c *common) validate() error {
	if c.stream == "" {
		return errors.New("--stream (or SHARDWATCH_STREAM) is required")
	}
	m, err := traffic.ParseKeyMode(c.partitionKey)
	if err != nil {
		return err
	}
	c.keyMode = m
	if c.progress < 0 || c.shutdownTimeout <= 0 {
		return errors.New("--progress must be >= 0 and --shutdown-timeout > 0")
	}
	if c.logFormat != "json" && c.logFormat != "console" {
		return fmt.Errorf("--log-format %q: want json or console", c.logFormat)
	}
	return nil
}

func envDuration(getenv func(string) string, key string, def time.Duration) time.Duration {
	if v := getenv(key); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func newLogger(format string, w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if format == "json" {
		encoder = zapcore.NewJSONEncoder(enc)
	} else {
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), zap.InfoLevel))
}

// pipeline is a running Producer with its progress reporter.
type pipeline struct {
	c     *common
	e     env
	log   *zap.Logger
	prod  *putter.Producer
	start time.Time

	runErr    chan error
	cancelRun context.CancelFunc
	stopProg  chan struct{}
	progDone  chan struct{}
	extra     func() string // mode-specific progress fields
	// stoppedAt is when ctx ended (UnixNano, 0 = not yet): the drain
	// deadline counts from the signal, not from when finish runs.
	stoppedAt  atomic.Int64
	stopNotify func() bool
	failedLog  atomic.Int64 // failures logged one by one so far
}

// maxFailureLogs bounds the per-record failure lines; the rest are counted.
const maxFailureLogs = 10

// startPipeline builds the client and the Producer and starts it. The
// Producer's context is detached from ctx: a signal stops the source, and
// the buffer then drains for up to --shutdown-timeout (see finish).
func startPipeline(ctx context.Context, c *common, e env, mode string) (*pipeline, error) {
	log := newLogger(c.logFormat, e.stderr).With(zap.String("stream", c.stream), zap.String("mode", mode))
	client, err := e.newClient(ctx, c.region)
	if err != nil {
		return nil, err
	}
	put, err := putter.New(client, putter.Config{Stream: c.stream, MaxAttempts: c.maxAttempts}, putter.WithSleep(e.sleep))
	if err != nil {
		return nil, err
	}
	p := &pipeline{c: c, e: e, log: log, start: e.now(), runErr: make(chan error, 1),
		stopProg: make(chan struct{}), progDone: make(chan struct{})}
	p.prod, err = putter.NewProducer(put, putter.ProducerConfig{
		Buffer:          c.buffer,
		Linger:          c.linger,
		Concurrency:     c.concurrency,
		Aggregate:       c.aggregate,
		AggregateLimits: kpl.Limits{MaxBytes: c.aggMaxBytes, MaxRecords: c.aggMaxRecords},
	}, log, putter.WithFailureHook(p.logFailures))
	if err != nil {
		return nil, err
	}
	p.stopNotify = context.AfterFunc(ctx, func() { p.stoppedAt.Store(e.now().UnixNano()) })
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancelRun = cancel
	go func() { p.runErr <- p.prod.Run(runCtx) }()
	go p.report()
	return p, nil
}

// logFailures logs the first few failed records one by one, then only
// counts them (the summary has the total). Senders call it concurrently.
func (p *pipeline) logFailures(fs []putter.Failure) {
	for i := range fs {
		n := p.failedLog.Add(1)
		if n > maxFailureLogs {
			return
		}
		f := &fs[i]
		p.log.Warn("record not written", zap.String("partition_key", f.Entry.PartitionKey),
			zap.Int("bytes", len(f.Entry.Data)), zap.Int("user_records", max(f.Entry.Records, 1)),
			zap.String("code", f.Code), zap.Error(f.Err))
		if n == maxFailureLogs {
			p.log.Warn("further failed records are only counted")
		}
	}
}

func (p *pipeline) report() {
	defer close(p.progDone)
	if p.c.progress == 0 {
		<-p.stopProg
		return
	}
	t := time.NewTicker(p.c.progress)
	defer t.Stop()
	var last int64
	lastAt := p.e.now()
	for {
		select {
		case <-p.stopProg:
			return
		case <-t.C:
			st := p.prod.Stats()
			now := p.e.now()
			rate := float64(st.Sent-last) / now.Sub(lastAt).Seconds()
			last, lastAt = st.Sent, now
			fmt.Fprintf(p.e.stderr, "progress: %.0f rec/s sent=%d retried=%d failed=%d buffered=%d%s\n",
				rate, st.Sent, st.Retried, st.Failed, st.Buffered, p.extraFields())
		}
	}
}

func (p *pipeline) extraFields() string {
	if p.extra == nil {
		return ""
	}
	return " " + p.extra()
}

// finish closes intake, waits for the buffer to drain (bounded by
// --shutdown-timeout once ctx has ended), prints the summary and returns
// errRecordsFailed when any record was not written.
func (p *pipeline) finish(ctx context.Context, mode string) error {
	p.prod.Close()
	var runErr error
	select {
	case runErr = <-p.runErr:
	case <-ctx.Done():
		left := p.c.shutdownTimeout
		if at := p.stoppedAt.Load(); at != 0 {
			left -= p.e.now().Sub(time.Unix(0, at))
		}
		t := time.NewTimer(max(left, 0))
		select {
		case runErr = <-p.runErr:
		case <-t.C:
			p.log.Warn("shutdown timeout: records still buffered count as failed", zap.Duration("timeout", p.c.shutdownTimeout))
			p.cancelRun()
			runErr = <-p.runErr
		}
		t.Stop()
	}
	p.cancelRun()
	p.stopNotify()
	close(p.stopProg)
	<-p.progDone
	_ = p.log.Sync() // stderr may not support sync; nothing to do about it

	st := p.prod.Stats()
	elapsed := p.e.now().Sub(p.start)
	fmt.Fprintf(p.e.stderr, "summary: mode=%s stream=%s sent=%d retried=%d failed=%d%s elapsed=%s rate=%.0f rec/s\n",
		mode, p.c.stream, st.Sent, st.Retried, st.Failed, p.extraFields(), elapsed.Round(time.Millisecond),
		float64(st.Sent)/max(elapsed.Seconds(), 1e-9))
	if st.Failed > 0 {
		return fmt.Errorf("%w: %d of %d", errRecordsFailed, st.Failed, st.Sent+st.Failed)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// parseSpeed reads --speed: a positive factor or "max".
func parseSpeed(s string) (float64, error) {
	if strings.EqualFold(s, "max") {
		return 0, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("--speed %q: want a positive factor (60 = 60x faster) or max", s)
	}
	return v, nil
}

// parseInterspersed parses flags that may follow positional arguments
// ("replay FILE --speed max"), returning the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
