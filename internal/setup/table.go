package setup

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
)

// ensureTable creates the table unless it exists, waits until it is usable,
// checks its key schema and enables TTL.
func (a *applier) ensureTable(ctx context.Context, t Table) error {
	log := a.log.With(zap.String("table", t.Name))
	err := a.poll(ctx, func(ctx context.Context) (bool, error) {
		out, err := a.c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.Name)})
		var notFound *types.ResourceNotFoundException
		switch {
		case errors.As(err, &notFound):
			return false, a.createTable(ctx, t, log)
		case err != nil:
			return false, fmt.Errorf("describe: %w", err)
		}
		switch s := out.Table.TableStatus; s {
		case types.TableStatusActive, types.TableStatusUpdating:
			return true, checkKeys(t, out.Table.KeySchema)
		case types.TableStatusCreating, types.TableStatusDeleting:
			return false, nil
		default: // ARCHIVING, ARCHIVED, INACCESSIBLE_ENCRYPTION_CREDENTIALS
			return false, fmt.Errorf("%w: status %s", ErrConflict, s)
		}
	})
	if err == nil && t.TTLAttribute != "" {
		err = a.ensureTTL(ctx, t, log)
	}
	if err != nil {
		return fmt.Errorf("table %s: %w", t.Name, err)
	}
	return nil
}

func (a *applier) createTable(ctx context.Context, t Table, log *zap.Logger) error {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(t.Name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(t.PartitionKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(t.PartitionKey), KeyType: types.KeyTypeHash},
		},
	}
	if t.SortKey != "" {
		in.AttributeDefinitions = append(in.AttributeDefinitions,
			types.AttributeDefinition{AttributeName: aws.String(t.SortKey), AttributeType: types.ScalarAttributeTypeS})
		in.KeySchema = append(in.KeySchema,
			types.KeySchemaElement{AttributeName: aws.String(t.SortKey), KeyType: types.KeyTypeRange})
	}
	_, err := a.c.DynamoDB.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		// Another Apply won the race ("Cannot create preexisting table"),
		// or the old table is still deleting.
		return nil
	case err != nil:
		return fmt.Errorf("create: %w", err)
	}
	log.Info("created table")
	a.created("table/" + t.Name)
	return nil
}

// checkKeys rejects an existing table whose keys differ from the plan: every
// reader and writer would fail on it, and changing keys means a new table.
func checkKeys(t Table, schema []types.KeySchemaElement) error {
	var hash, rng string
	for _, k := range schema {
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = aws.ToString(k.AttributeName)
		case types.KeyTypeRange:
			rng = aws.ToString(k.AttributeName)
		}
	}
	if hash != t.PartitionKey || rng != t.SortKey {
		return fmt.Errorf("%w: keys (%q, %q), plan wants (%q, %q)", ErrConflict, hash, rng, t.PartitionKey, t.SortKey)
	}
	return nil
}

// ensureTTL enables TTL on t.TTLAttribute unless it is already enabled (or
// being enabled) there. UpdateTimeToLive is not idempotent: it fails with a
// ValidationException when TTL is already on, which a concurrent Apply can
// cause between our describe and update, so a failed update is re-checked.
func (a *applier) ensureTTL(ctx context.Context, t Table, log *zap.Logger) error {
	on, err := a.ttlEnabled(ctx, t)
	if err != nil || on {
		return err
	}
	_, err = a.c.DynamoDB.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(t.Name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(t.TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		if on, derr := a.ttlEnabled(ctx, t); derr == nil && on {
			return nil
		}
		return fmt.Errorf("enable TTL on %s: %w", t.TTLAttribute, err)
	}
	log.Info("enabled TTL", zap.String("attribute", t.TTLAttribute))
	a.created("ttl/" + t.Name)
	return nil
}

// ttlEnabled reports whether TTL is enabled or enabling on t.TTLAttribute; TTL
// on another attribute is a conflict (only one TTL attribute per table).
func (a *applier) ttlEnabled(ctx context.Context, t Table) (bool, error) {
	out, err := a.c.DynamoDB.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(t.Name)})
	if err != nil {
		return false, fmt.Errorf("describe TTL: %w", err)
	}
	d := out.TimeToLiveDescription
	if d == nil {
		return false, nil
	}
	switch d.TimeToLiveStatus {
	case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
		if got := aws.ToString(d.AttributeName); got != t.TTLAttribute {
			return false, fmt.Errorf("%w: TTL is on attribute %q, plan wants %q", ErrConflict, got, t.TTLAttribute)
		}
		return true, nil
	case types.TimeToLiveStatusDisabling:
		// AWS refuses to re-enable TTL for up to an hour after disabling.
		return false, fmt.Errorf("%w: TTL is being disabled", ErrConflict)
	default:
		return false, nil
	}
}
