package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Stack is a private local AWS stack run by scripts/localstack on its own
// ports and directory, so restarting it never disturbs the shared
// default-port stack other engineers use.
type Stack struct {
	Script                             string // path of scripts/localstack
	Dir                                string // SHARDWATCH_STACK_DIR
	KinesisPort, DynamoDBPort, SNSPort int
	// JavaOpts for DynamoDB Local (default -Xmx384m: the chaos stack holds
	// little data).
	JavaOpts string
	log      func(format string, args ...any)
}

// Services the harness can restart.
const (
	Kinesis  = "kinesis"
	DynamoDB = "dynamodb"
)

// NewStack picks three free ports.
func NewStack(script, dir string, logf func(string, ...any)) (*Stack, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	return &Stack{Script: script, Dir: dir, KinesisPort: ports[0], DynamoDBPort: ports[1], SNSPort: ports[2], JavaOpts: "-Xmx384m", log: logf}, nil
}

func freePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("chaos: free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func (s *Stack) env() []string {
	return append(os.Environ(),
		"SHARDWATCH_STACK_DIR="+s.Dir,
		"SHARDWATCH_STACK_PERSIST=1",
		"SHARDWATCH_KINESIS_PORT="+strconv.Itoa(s.KinesisPort),
		"SHARDWATCH_DYNAMODB_PORT="+strconv.Itoa(s.DynamoDBPort),
		"SHARDWATCH_SNS_PORT="+strconv.Itoa(s.SNSPort),
		"SHARDWATCH_DYNAMODB_JAVA_OPTS="+s.JavaOpts,
	)
}

func (s *Stack) script(ctx context.Context, cmd string) error {
	c := exec.CommandContext(ctx, s.Script, cmd)
	c.Env = s.env()
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: localstack %s: %w\n%s", cmd, err, out)
	}
	return nil
}

// Up starts every server not running (and installs on first use).
func (s *Stack) Up(ctx context.Context) error { return s.script(ctx, "up") }

// Down stops the servers of this stack's directory only.
func (s *Stack) Down(ctx context.Context) error { return s.script(ctx, "down") }

// Restart SIGKILLs one server (a crash: no clean shutdown) and starts it
// again on the same port and data directory. It returns when the server
// answers requests again.
func (s *Stack) Restart(ctx context.Context, svc string) error {
	pid, err := s.pid(svc)
	if err != nil {
		return err
	}
	// The server leads its own process group (setsid): signal the group.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("chaos: kill %s (pid %d): %w", svc, pid, err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %s (pid %d) survived SIGKILL", svc, pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return s.Up(ctx)
}

func (s *Stack) pid(svc string) (int, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, svc+".pid"))
	if err != nil {
		return 0, fmt.Errorf("chaos: %s pid: %w", svc, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("chaos: %s pid file holds %q", svc, b)
	}
	return pid, nil
}

// Endpoint returns the base URL of a service.
func (s *Stack) Endpoint(svc string) string {
	switch svc {
	case Kinesis:
		return "http://127.0.0.1:" + strconv.Itoa(s.KinesisPort)
	case DynamoDB:
		return "http://127.0.0.1:" + strconv.Itoa(s.DynamoDBPort)
	default:
		return "http://127.0.0.1:" + strconv.Itoa(s.SNSPort)
	}
}

// WorkerEnv is the environment of a worker or CLI process on this stack.
func (s *Stack) WorkerEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "SHARDWATCH_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out,
		"AWS_ENDPOINT_URL_KINESIS="+s.Endpoint(Kinesis),
		"AWS_ENDPOINT_URL_DYNAMODB="+s.Endpoint(DynamoDB),
		"AWS_ENDPOINT_URL_SNS="+s.Endpoint("sns"),
		"AWS_ENDPOINT_URL_SQS="+s.Endpoint("sns"),
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	)
}

// Clients are SDK clients for the harness's own calls.
type Clients struct {
	Kinesis  *kinesis.Client
	DynamoDB *dynamodb.Client
	SNS      *sns.Client
	SQS      *sqs.Client
}

// Clients builds clients for this stack.
func (s *Stack) Clients() Clients {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}
	return Clients{
		Kinesis: kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(s.Endpoint(Kinesis)) }),
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(s.Endpoint(DynamoDB))
			o.DisableValidateResponseChecksum = true
		}),
		SNS: sns.NewFromConfig(cfg, func(o *sns.Options) { o.BaseEndpoint = aws.String(s.Endpoint("sns")) }),
		SQS: sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(s.Endpoint("sns")) }),
	}
}
