package awsenv

import (
	"context"
	"errors"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Retry policy for every client made from Load.
const (
	// MaxAttempts per API call, first try included. Callers in the worker
	// loop have their own backoff; five attempts ride out a throttling burst
	// without hiding an outage for long.
	MaxAttempts = 5
	// MaxBackoff caps the jittered exponential delay between attempts.
	MaxBackoff = 5 * time.Second
	// AppID is sent in the User-Agent header.
	AppID = "shardwatch"
)

// ErrNoRegion is returned when neither the region argument nor the
// environment or shared config names a region.
var ErrNoRegion = errors.New("no AWS region: set AWS_REGION or pass a region")

// Load returns the default SDK configuration (environment, shared config,
// container and instance credentials) with region overriding AWS_REGION when
// it is not empty, and the retry policy above. optFns are applied last.
func Load(ctx context.Context, region string, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithAppID(AppID),
		config.WithRetryer(NewRetryer),
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(opts, optFns...)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	return cfg, nil
}

// NewRetryer is the standard SDK retryer with MaxAttempts and MaxBackoff and
// without the client-side retry quota: under sustained Kinesis or DynamoDB
// throttling the quota turns retryable throttles into immediate "retry quota
// exceeded" failures across every call of a long-running worker, which then
// backs off by itself anyway.
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.MaxBackoff = MaxBackoff
		o.RateLimiter = ratelimit.None
	})
}

// LocalDynamoDB turns off response CRC32 validation when DynamoDB is a
// local server (a custom endpoint is set): DynamoDB Local sends a zero
// checksum on some responses and the SDK warns on every one of them.
// Against real AWS (no custom endpoint) validation stays on.
func LocalDynamoDB(getenv func(string) string) func(*dynamodb.Options) {
	local := getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || getenv("AWS_ENDPOINT_URL") != ""
	return func(o *dynamodb.Options) {
		if local {
			o.DisableValidateResponseChecksum = true
		}
	}
}
