package awsenv_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/awsenv"
	"github.com/shardwatch/shardwatch/internal/testenv"
)

// isolate hides the developer's ~/.aws and AWS_* variables from the test.
func isolate(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "") // restores the value after the test
			if err := os.Unsetenv(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	missing := filepath.Join(t.TempDir(), "missing")
	t.Setenv("AWS_CONFIG_FILE", missing)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func TestLoadRegion(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		arg     string
		want    string
		wantErr error
	}{
		{name: "argument", arg: "eu-west-1", want: "eu-west-1"},
		{name: "environment", env: "ap-south-1", want: "ap-south-1"},
		{name: "argument overrides environment", env: "ap-south-1", arg: "eu-west-1", want: "eu-west-1"},
		{name: "none", wantErr: awsenv.ErrNoRegion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			if tc.env != "" {
				t.Setenv("AWS_REGION", tc.env)
			}
			cfg, err := awsenv.Load(t.Context(), tc.arg)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Load error = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, cfg.Region); diff != "" {
				t.Errorf("region mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadRetryer(t *testing.T) {
	isolate(t)
	cfg, err := awsenv.Load(t.Context(), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Retryer()
	if got := r.MaxAttempts(); got != awsenv.MaxAttempts {
		t.Errorf("MaxAttempts = %d, want %d", got, awsenv.MaxAttempts)
	}
	// With the retry quota disabled, acquiring retry tokens never fails.
	for i := range 1000 {
		if _, err := r.GetRetryToken(t.Context(), errors.New("throttled")); err != nil {
			t.Fatalf("GetRetryToken #%d: %v", i, err)
		}
	}
}

// TestLoadHonoursEndpointEnv checks the claim the package relies on: the
// standard AWS_ENDPOINT_URL_<SERVICE> variables route clients to the local
// stack with no code of ours.
func TestLoadHonoursEndpointEnv(t *testing.T) {
	env := testenv.Environ(t)
	isolate(t)
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v)
		}
	}
	cfg, err := awsenv.Load(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.Name(t, "awsenv")
	testenv.CreateStream(t, name, 1)
	out, err := kinesis.NewFromConfig(cfg).DescribeStreamSummary(t.Context(),
		&kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatalf("client from Load does not reach the local stack: %v", err)
	}
	if got := aws.ToString(out.StreamDescriptionSummary.StreamName); got != name {
		t.Errorf("stream name = %q, want %q", got, name)
	}
}
