package setup

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"
)

// ensureStream creates the stream unless it exists and waits until it is
// usable. A stream being deleted is waited out and then created again; an
// existing stream with another shard count is used as is (resharding is an
// operator decision, not a setup step).
func (a *applier) ensureStream(ctx context.Context, s Stream) error {
	log := a.log.With(zap.String("stream", s.Name))
	err := a.poll(ctx, func(ctx context.Context) (bool, error) {
		out, err := a.c.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.Name)})
		var notFound *types.ResourceNotFoundException
		switch {
		case errors.As(err, &notFound):
			return false, a.createStream(ctx, s, log)
		case err != nil:
			return false, fmt.Errorf("describe: %w", err)
		}
		sum := out.StreamDescriptionSummary
		switch sum.StreamStatus {
		case types.StreamStatusActive, types.StreamStatusUpdating:
			a.mu.Lock()
			a.res.StreamARN = aws.ToString(sum.StreamARN)
			a.mu.Unlock()
			if open := aws.ToInt32(sum.OpenShardCount); open != s.Shards {
				log.Warn("stream exists with a different shard count; leaving it unchanged",
					zap.Int32("open_shards", open), zap.Int32("planned_shards", s.Shards))
			}
			return true, nil
		default: // CREATING, DELETING
			return false, nil
		}
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.Name, err)
	}
	return nil
}

func (a *applier) createStream(ctx context.Context, s Stream, log *zap.Logger) error {
	_, err := a.c.Kinesis.CreateStream(ctx, &kinesis.CreateStreamInput{
		StreamName:        aws.String(s.Name),
		ShardCount:        aws.Int32(s.Shards),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned},
	})
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		// Another Apply won the race, or the old stream is still deleting.
		return nil
	case err != nil:
		return fmt.Errorf("create: %w", err)
	}
	log.Info("created stream", zap.Int32("shards", s.Shards))
	a.created("stream/" + s.Name)
	return nil
}
