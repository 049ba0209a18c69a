package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/shardwatch/shardwatch/internal/config"
	"github.com/shardwatch/shardwatch/pkg/processors"
	"github.com/shardwatch/shardwatch/pkg/sinks/dynamo"
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
		w, err := openDL(cfg.DeadLetter.Path)
		if err != nil {
			return fail(err)
		}
		out.pipeline.DeadLetters = w
	default:
		w, err := dynamo.NewDeadLetterWriter(ddb, dynamo.DeadLetterOptions{Table: cfg.Tables.DeadLetter})
		if err != nil {
			return fail(err)
		}
		out.pipeline.DeadLetters = w
	}
	_, _, _, _ = awsCfg, stdout, os.Stdout, fmt.Sprint
	return out, closeAll, nil
}

type tmpDL struct{ f *os.File }

func openDL(p string) (*tmpDL, error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return &tmpDL{f}, err
}
func (t *tmpDL) WriteDeadLetters(_ context.Context, d []processors.DeadLetter) error {
	for _, x := range d {
		b, _ := json.Marshal(x)
		t.f.Write(append(b, '\n'))
	}
	return t.f.Sync()
}
