package faultproxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/shardwatch/shardwatch/internal/faultproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream answers every request with an empty JSON object.
func upstream(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"Records":[],"MillisBehindLatest":0,"NextShardIterator":"x","Items":[]}`)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

func serve(t *testing.T, rules []faultproxy.Rule) (*faultproxy.Proxy, string) {
	t.Helper()
	p, err := faultproxy.New(faultproxy.Config{Target: upstream(t), Rules: rules, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(p)
	t.Cleanup(s.Close)
	return p, s.URL
}

var awsCfg = aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""), RetryMaxAttempts: 1}

// The SDK decodes the injected errors into the services' typed errors.
func TestErrorsAreTheServicesOwn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		kind faultproxy.Kind
		code string
	}{
		{faultproxy.Throughput, "ProvisionedThroughputExceededException"},
		{faultproxy.KMSThrottling, "KMSThrottlingException"},
		{faultproxy.Throttling, "ThrottlingException"},
		{faultproxy.Internal, "InternalFailure"},
		{faultproxy.Unavailable, "ServiceUnavailable"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			_, url := serve(t, []faultproxy.Rule{{Kind: tc.kind, Rate: 1}})
			kc := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(url) })
			_, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("kinesis error %v; want %s", err, tc.code)
			}
			if tc.kind == faultproxy.Throughput {
				var pte *ktypes.ProvisionedThroughputExceededException
				if !errors.As(err, &pte) {
					t.Errorf("not a kinesis ProvisionedThroughputExceededException: %T", err)
				}
				ddb := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(url) })
				_, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: map[string]dtypes.AttributeValue{"k": &dtypes.AttributeValueMemberS{Value: "v"}}})
				var dpte *dtypes.ProvisionedThroughputExceededException
				if !errors.As(err, &dpte) {
					t.Errorf("dynamodb error %v; want its ProvisionedThroughputExceededException", err)
				}
			}
		})
	}
}

func TestRulesSelectByServiceAndOperation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, url := serve(t, []faultproxy.Rule{{Service: "Kinesis", Operations: []string{"GetRecords"}, Kind: faultproxy.Throughput, Rate: 1}})
	kc := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(url) })
	if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("it")}); err == nil {
		t.Error("GetRecords passed a rate-1 rule")
	}
	if _, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")}); err != nil {
		t.Errorf("ListShards was hit by a GetRecords rule: %v", err)
	}
	st := p.Stats()
	if diff := cmp.Diff(map[string]int64{"throughput GetRecords": 1}, st.Injected); diff != "" || st.Requests != 2 || st.Forwarded != 1 {
		t.Errorf("stats %+v (-want +got injected):\n%s", st, diff)
	}
	if err := p.SetRules(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("it")}); err != nil {
		t.Errorf("after SetRules(nil): %v", err)
	}
}

func TestSlowAndDrop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, url := serve(t, []faultproxy.Rule{{Kind: faultproxy.Slow, Rate: 1, Delay: 200 * time.Millisecond}})
	kc := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(url) })
	start := time.Now()
	if _, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("slow answer after %s", d)
	}
	_, url = serve(t, []faultproxy.Rule{{Kind: faultproxy.Drop, Rate: 1, DropAfter: true}})
	kc = kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(url) })
	if _, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")}); err == nil {
		t.Error("a dropped connection returned no error")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []faultproxy.Config{
		{Target: "not a url"},
		{Target: "http://x", Rules: []faultproxy.Rule{{Kind: "nope", Rate: 1}}},
		{Target: "http://x", Rules: []faultproxy.Rule{{Kind: faultproxy.Slow, Rate: 1}}},
		{Target: "http://x", Rules: []faultproxy.Rule{{Kind: faultproxy.Internal, Rate: 2}}},
	} {
		if _, err := faultproxy.New(c); err == nil {
			t.Errorf("New(%+v) accepted a bad config", c)
		}
	}
}

// Hold keeps matching requests until Release; others pass at once.
func TestHoldUntilRelease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, url := serve(t, []faultproxy.Rule{{Service: "Kinesis", Operations: []string{"ListShards"}, Kind: faultproxy.Hold, Rate: 1}})
	kc := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(url) })
	done := make(chan error, 1)
	go func() {
		_, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
		done <- err
	}()
	for p.Held() != 1 {
		if ctx.Err() != nil {
			t.Fatal("the request was never held")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	if _, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")}); err != nil {
		t.Fatalf("an unmatched request was held or failed: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("held request answered before Release: %v", err)
	default:
	}
	p.Release()
	if err := <-done; err != nil {
		t.Fatalf("released request: %v", err)
	}
	if n := p.Held(); n != 0 {
		t.Fatalf("%d still held after Release", n)
	}
}
