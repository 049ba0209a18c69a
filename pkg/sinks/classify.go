package sinks

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Class says what a sink should do about an error.
type Class int

const (
	// Permanent errors fail the inputs concerned: the request itself is
	// wrong (validation, missing table, access denied) and a retry repeats it.
	Permanent Class = iota
	// Retryable errors are transient: throttling, server faults, broken
	// connections. Retry with backoff.
	Retryable
	// Canceled means the caller's context ended: stop at once.
	Canceled
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Canceled:
		return "canceled"
	default:
		return "permanent"
	}
}

// retryableCodes are the smithy.APIError codes worth retrying, across the
// services the sinks call (DynamoDB, SNS, CloudWatch). Anything else with a
// 4xx status is the caller's mistake.
var retryableCodes = map[string]bool{
	// DynamoDB
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"InternalServerError":                    true,
	"TransactionConflictException":           true,
	"LimitExceededException":                 true,
	// SNS
	"Throttled":          true,
	"Throttling":         true,
	"InternalError":      true,
	"KMSThrottling":      true,
	"ServiceUnavailable": true,
	// CloudWatch
	"InternalServiceFault":        true,
	"InternalFailure":             true,
	"ServiceUnavailableException": true,
	// Generic AWS
	"RequestTimeout":           true,
	"RequestTimeoutException":  true,
	"SlowDown":                 true,
	"EC2ThrottledException":    true,
	"PriorRequestNotComplete":  true,
	"TooManyRequestsException": true,
}

// Classify is the one place that decides whether an AWS call is worth
// retrying. It looks through wrapping with errors.As: the SDK's own retryer
// wraps the last API error in a MaxAttemptsError, or joins it with its
// retry-quota error, and both still carry the API error.
func Classify(err error) Class {
	if err == nil {
		return Permanent
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Canceled
	}
	var canceled *aws.RequestCanceledError
	if errors.As(err, &canceled) {
		return Canceled
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if retryableCodes[apiErr.ErrorCode()] {
			return Retryable
		}
		if apiErr.ErrorFault() == smithy.FaultServer {
			return Retryable
		}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		if code := respErr.HTTPStatusCode(); code >= 500 || code == 429 {
			return Retryable
		}
		if apiErr != nil {
			return Permanent
		}
	}
	if apiErr != nil {
		return Permanent
	}
	// No API error: the request may not have reached the service. A broken
	// connection or a truncated response is transient.
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) {
		return Retryable
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return Retryable
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return Retryable
	}
	return Permanent
}

// IsRetryable reports whether Classify(err) == Retryable.
func IsRetryable(err error) bool { return Classify(err) == Retryable }

// IsConditionFailed reports whether err is a DynamoDB conditional check
// failure (PutItem/UpdateItem with a ConditionExpression that was false).
func IsConditionFailed(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "ConditionalCheckFailedException"
}
