// Package sinktest gives the sink tests clients for the local AWS stack
// (DynamoDB Local, goaws) and unique resource names, so tests run
// concurrently with other engineers' on the shared stack.
package sinktest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/uuid"
)

// Default endpoints of the local stack (scripts/localstack env).
var defaults = map[string]string{
	"DYNAMODB": "http://127.0.0.1:4569",
	"SNS":      "http://127.0.0.1:4575",
	"SQS":      "http://127.0.0.1:4575",
}

// Endpoint returns AWS_ENDPOINT_URL_<SERVICE>, else the local default. It
// skips the test when nothing listens there, except under CI (CI set),
// where the stack is part of the run and its absence is a failure.
func Endpoint(t testing.TB, service string) string {
	t.Helper()
	ep := os.Getenv("AWS_ENDPOINT_URL_" + service)
	if ep == "" {
		ep = defaults[service]
	}
	u, err := url.Parse(ep)
	if err != nil {
		t.Fatalf("AWS_ENDPOINT_URL_%s=%q: %v", service, ep, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		msg := fmt.Sprintf("local %s not reachable at %s (start it with scripts/localstack up): %v", service, ep, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	_ = conn.Close()
	return ep
}

// Config returns an SDK config for the local stack with dummy credentials.
// Callers set BaseEndpoint per client from Endpoint.
func Config(t testing.TB) aws.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")),
	)
	if err != nil {
		t.Fatalf("load aws config: %v", err)
	}
	return cfg
}

// Name returns prefix plus a random suffix, valid as a table, topic or
// queue name.
func Name(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
}
