package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func respErr(status int, err error) error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}
}

func TestClassify(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"dynamodb throughput", api("ProvisionedThroughputExceededException"), Retryable},
		{"typed throughput", &types.ProvisionedThroughputExceededException{}, Retryable},
		{"throttling", api("ThrottlingException"), Retryable},
		{"request limit", api("RequestLimitExceeded"), Retryable},
		{"internal server error", &types.InternalServerError{}, Retryable},
		{"sns throttled", api("Throttled"), Retryable},
		{"server fault", &smithy.GenericAPIError{Code: "Weird", Fault: smithy.FaultServer}, Retryable},
		{"5xx without code", respErr(503, api("UnknownError")), Retryable},
		{"429", respErr(429, api("UnknownError")), Retryable},
		{"wrapped by sdk retryer", &retry.MaxAttemptsError{Attempt: 3, Err: api("ThrottlingException")}, Retryable},
		{"joined with quota error", errors.Join(api("ThrottlingException"), errors.New("retry quota exceeded")), Retryable},
		{"send error", &smithyhttp.RequestSendError{Err: io.ErrUnexpectedEOF}, Retryable},
		{"validation", api("ValidationException"), Permanent},
		{"validation 400", respErr(400, api("ValidationException")), Permanent},
		{"not found", &types.ResourceNotFoundException{}, Permanent},
		{"condition failed", &types.ConditionalCheckFailedException{}, Permanent},
		{"plain error", errors.New("boom"), Permanent},
		{"canceled", fmt.Errorf("op: %w", context.Canceled), Canceled},
		{"deadline", context.DeadlineExceeded, Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if !IsConditionFailed(fmt.Errorf("put: %w", &types.ConditionalCheckFailedException{})) {
		t.Error("IsConditionFailed missed a wrapped ConditionalCheckFailedException")
	}
}

func TestBatchError(t *testing.T) {
	cause := &smithy.GenericAPIError{Code: "ValidationException"}
	err := fmt.Errorf("write: %w", NewBatchError("op", 10, []Failure{
		{Index: 7, Key: "b", Err: context.Canceled},
		{Index: 2, Key: "a", Err: cause},
	}))
	var be *BatchError
	if !errors.As(err, &be) || be.Failed[0].Index != 2 || be.Failed[1].Index != 7 {
		t.Fatalf("BatchError not found or unsorted: %v", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Error("errors.Is does not see a failure's cause")
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
		t.Error("errors.As does not see a failure's API error")
	}
	if NewBatchError("op", 3, nil) != nil {
		t.Error("no failures must give a nil error")
	}
}
