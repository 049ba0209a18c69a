package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Environment variables read by this package and by scripts/localstack.
const (
	EnvKinesisPort      = "SHARDWATCH_KINESIS_PORT"
	EnvDynamoDBPort     = "SHARDWATCH_DYNAMODB_PORT"
	EnvSNSPort          = "SHARDWATCH_SNS_PORT"
	EnvSkipIntegration  = "SHARDWATCH_SKIP_INTEGRATION"
	DefaultKinesisPort  = "4567"
	DefaultDynamoDBPort = "4569"
	DefaultSNSPort      = "4575"

	// Region and AccountID are what the local stack reports in ARNs.
	Region    = "us-east-1"
	AccountID = "000000000000"
)

// Endpoints are the base URLs of the local servers. SQS is served by the same
// goaws process as SNS.
type Endpoints struct {
	Kinesis  string
	DynamoDB string
	SNS      string
	SQS      string
}

// LocalEndpoints resolves the endpoints from the environment; see the package
// comment for the order.
func LocalEndpoints() Endpoints {
	return Endpoints{
		Kinesis:  endpoint("KINESIS", EnvKinesisPort, DefaultKinesisPort),
		DynamoDB: endpoint("DYNAMODB", EnvDynamoDBPort, DefaultDynamoDBPort),
		SNS:      endpoint("SNS", EnvSNSPort, DefaultSNSPort),
		SQS:      endpoint("SQS", EnvSNSPort, DefaultSNSPort),
	}
}

func endpoint(service, portEnv, defaultPort string) string {
	if v := os.Getenv("AWS_ENDPOINT_URL_" + service); v != "" {
		return v
	}
	if v := os.Getenv("AWS_ENDPOINT_URL"); v != "" {
		return v
	}
	port := os.Getenv(portEnv)
	if port == "" {
		port = defaultPort
	}
	return "http://127.0.0.1:" + port
}

// byID maps an SDK service ID (the name aws-sdk-go-v2 clients pass to their
// config sources) to its endpoint.
func (e Endpoints) byID(sdkID string) (string, bool) {
	switch sdkID {
	case "Kinesis":
		return e.Kinesis, true
	case "DynamoDB":
		return e.DynamoDB, true
	case "SNS":
		return e.SNS, true
	case "SQS":
		return e.SQS, true
	}
	return "", false
}

// GetServiceBaseEndpoint lets an aws.Config carry per-service endpoints the
// same way config.LoadDefaultConfig does for AWS_ENDPOINT_URL_<SERVICE>: every
// client built from Config(t) with NewFromConfig asks its config sources for
// this method.
func (e Endpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	v, ok := e.byID(sdkID)
	return v, ok, nil
}

// Environ returns os.Environ() plus the variables that point an AWS SDK (or
// the aws CLI) in a child process at the local stack, for tests that exec
// binaries.
func Environ(t testing.TB) []string {
	t.Helper()
	e := LocalEndpoints()
	requireReachable(t, e.Kinesis, e.DynamoDB, e.SNS)
	return append(os.Environ(),
		"AWS_ENDPOINT_URL_KINESIS="+e.Kinesis,
		"AWS_ENDPOINT_URL_DYNAMODB="+e.DynamoDB,
		"AWS_ENDPOINT_URL_SNS="+e.SNS,
		"AWS_ENDPOINT_URL_SQS="+e.SQS,
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"AWS_SESSION_TOKEN=",
		"AWS_REGION="+Region,
		"AWS_DEFAULT_REGION="+Region,
		"AWS_EC2_METADATA_DISABLED=true",
	)
}

// Config returns an aws.Config for the local stack: static dummy credentials,
// the stack's region and per-service endpoints, so any client made from it
// with NewFromConfig talks to the stack. It fails the test when the stack is
// not reachable (see the package comment).
func Config(t testing.TB) aws.Config {
	t.Helper()
	e := LocalEndpoints()
	requireReachable(t, e.Kinesis, e.DynamoDB, e.SNS)
	return config(e)
}

func config(e Endpoints) aws.Config {
	cfg := aws.Config{
		Region:        Region,
		Credentials:   credentials.NewStaticCredentialsProvider("local", "local", ""),
		ConfigSources: []any{e},
	}
	// With AWS_ENDPOINT_URL set and no service-specific variable, SDK clients
	// skip the config sources and use BaseEndpoint.
	if v := os.Getenv("AWS_ENDPOINT_URL"); v != "" {
		cfg.BaseEndpoint = aws.String(v)
	}
	return cfg
}

// Kinesis returns a client for the local kinesalite.
func Kinesis(t testing.TB) *kinesis.Client {
	t.Helper()
	e := LocalEndpoints()
	requireReachable(t, e.Kinesis)
	return kinesis.NewFromConfig(config(e), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(e.Kinesis) })
}

// DynamoDB returns a client for the local DynamoDB Local. Response CRC32
// validation is off: DynamoDB Local sends a zero checksum on some responses.
func DynamoDB(t testing.TB) *dynamodb.Client {
	t.Helper()
	e := LocalEndpoints()
	requireReachable(t, e.DynamoDB)
	return dynamodb.NewFromConfig(config(e), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(e.DynamoDB)
		o.DisableValidateResponseChecksum = true
	})
}

// SNS returns a client for the local goaws.
func SNS(t testing.TB) *sns.Client {
	t.Helper()
	e := LocalEndpoints()
	requireReachable(t, e.SNS)
	return sns.NewFromConfig(config(e), func(o *sns.Options) { o.BaseEndpoint = aws.String(e.SNS) })
}

// SQS returns a client for the local goaws.
func SQS(t testing.TB) *sqs.Client {
	t.Helper()
	e := LocalEndpoints()
	requireReachable(t, e.SQS)
	return sqs.NewFromConfig(config(e), func(o *sqs.Options) { o.BaseEndpoint = aws.String(e.SQS) })
}

// probeTimeout bounds the one TCP dial per endpoint and process.
const probeTimeout = 2 * time.Second

var probes sync.Map // endpoint URL -> *probe

type probe struct {
	once sync.Once
	err  error
}

// requireReachable fails (or, with SHARDWATCH_SKIP_INTEGRATION=1, skips) the
// test unless every endpoint accepts a TCP connection. The result is cached per
// endpoint for the life of the test binary, so the check costs one dial.
func requireReachable(t testing.TB, endpoints ...string) {
	t.Helper()
	var failed []string
	for _, ep := range endpoints {
		v, _ := probes.LoadOrStore(ep, &probe{})
		p := v.(*probe)
		p.once.Do(func() { p.err = dial(ep) })
		if p.err != nil {
			failed = append(failed, p.err.Error())
		}
	}
	if len(failed) == 0 {
		return
	}
	msg := fmt.Sprintf("local AWS stack not reachable at %s: run scripts/localstack up", strings.Join(failed, "; "))
	if os.Getenv(EnvSkipIntegration) == "1" {
		t.Skip(msg + " (skipped: " + EnvSkipIntegration + "=1)")
	}
	t.Fatal(msg)
}

func dial(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s (not a URL)", endpoint)
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	conn, err := net.DialTimeout("tcp", host, probeTimeout)
	if err != nil {
		return fmt.Errorf("%s (%v)", endpoint, err)
	}
	return conn.Close()
}
