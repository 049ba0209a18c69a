package consumer

import (
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/pkg/processors"
	cwsink "github.com/shardwatch/shardwatch/pkg/sinks/cloudwatch"
	"github.com/shardwatch/shardwatch/pkg/sinks/dynamo"
	"github.com/shardwatch/shardwatch/pkg/sinks/emf"
	"github.com/shardwatch/shardwatch/pkg/sinks/jsonl"
	snssink "github.com/shardwatch/shardwatch/pkg/sinks/sns"
)

type builtSinks struct {
	pipeline processors.Sinks
	store    processors.Store
}

// buildSinks builds the sinks the configuration selects. The returned func
// closes files.
func buildSinks(cfg config.Consumer, awsCfg aws.Config, ddb *dynamodb.Client, stdout io.Writer, log *zap.Logger) (builtSinks, func(), error) {
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			if err := c(); err != nil {
				log.Warn("close sink", zap.Error(err))
			}
		}
	}
	fail := func(err error) (builtSinks, func(), error) {
		closeAll()
		return builtSinks{}, func() {}, err
	}
	var out builtSinks
	items, err := dynamo.NewItemWriter(ddb, dynamo.WriterOptions{Logger: log.Named("items")})
	if err != nil {
		return fail(err)
	}
	out.pipeline.Items = items
	store, err := dynamo.NewStore(ddb, dynamo.StoreOptions{})
	if err != nil {
		return fail(err)
	}
	out.store = store

	switch cfg.DeadLetter.Sink {
	case "file":
		w, err := jsonl.OpenDeadLetters(cfg.DeadLetter.Path)
		if err != nil {
			return fail(fmt.Errorf("deadletter.path: %w", err))
		}
		closers = append(closers, w.Close)
		out.pipeline.DeadLetters = w
	default:
		w, err := dynamo.NewDeadLetterWriter(ddb, dynamo.DeadLetterOptions{Table: cfg.Tables.DeadLetter})
		if err != nil {
			return fail(err)
		}
		out.pipeline.DeadLetters = w
	}

	switch cfg.Metrics.Sink {
	case "cloudwatch":
		w, err := cwsink.New(cloudwatch.NewFromConfig(awsCfg), cwsink.Options{Namespace: cfg.Metrics.Namespace})
		if err != nil {
			return fail(err)
		}
		out.pipeline.Metrics = w
	case "emf":
		var dst io.Writer = stdout
		if cfg.Metrics.Path != "" {
			f, err := os.OpenFile(cfg.Metrics.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return fail(fmt.Errorf("metrics.path: %w", err))
			}
			closers = append(closers, f.Close)
			dst = f
		}
		w, err := emf.New(dst, emf.Options{Namespace: cfg.Metrics.Namespace})
		if err != nil {
			return fail(err)
		}
		out.pipeline.Metrics = w
	}

	if cfg.Alarms.TopicARN != "" {
		p, err := snssink.New(sns.NewFromConfig(awsCfg), snssink.Options{TopicARN: cfg.Alarms.TopicARN})
		if err != nil {
			return fail(err)
		}
		out.pipeline.Messages = p
	} else {
		log.Info("alarms.topic_arn not set: alarms are stored but not published")
	}
	return out, closeAll, nil
}

// The sinks implement what the pipeline writes to (they do not import
// pkg/processors themselves: their value types are in pkg/results).
var (
	_ processors.ItemWriter       = (*dynamo.ItemWriter)(nil)
	_ processors.ItemWriter       = (*jsonl.Items)(nil)
	_ processors.Store            = (*dynamo.Store)(nil)
	_ processors.DeadLetterWriter = (*dynamo.DeadLetterWriter)(nil)
	_ processors.DeadLetterWriter = (*jsonl.DeadLetters)(nil)
	_ processors.MetricWriter     = (*cwsink.Writer)(nil)
	_ processors.MetricWriter     = (*emf.Writer)(nil)
	_ processors.Publisher        = (*snssink.Publisher)(nil)
)
