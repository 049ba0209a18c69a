package stacktest

import (
	"bytes"
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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shardwatch/shardwatch/internal/testenv"
)

var services = []string{"kinesis", "dynamodb", "sns"}

// stack drives scripts/localstack for one state dir and port set.
type stack struct {
	t      *testing.T
	script string
	dir    string
	ports  map[string]int
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ports := freePorts(t, len(services))
	s := &stack{
		t:      t,
		script: filepath.Join(testenv.RepoRoot(t), "scripts", "localstack"),
		dir:    t.TempDir(),
		ports:  map[string]int{},
	}
	for i, svc := range services {
		s.ports[svc] = ports[i]
	}
	return s
}

// freePorts asks the kernel for n unused ports. They are released before the
// servers bind them; a collision in that window fails `up` loudly rather than
// touching another stack.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return ports
}

// run executes the script and returns stdout, stderr and the exit code.
func (s *stack) run(ctx context.Context, args ...string) (string, string, int) {
	s.t.Helper()
	cmd := exec.CommandContext(ctx, s.script, args...)
	cmd.Env = append(os.Environ(),
		"SHARDWATCH_STACK_DIR="+s.dir,
		"SHARDWATCH_KINESIS_PORT="+strconv.Itoa(s.ports["kinesis"]),
		"SHARDWATCH_DYNAMODB_PORT="+strconv.Itoa(s.ports["dynamodb"]),
		"SHARDWATCH_SNS_PORT="+strconv.Itoa(s.ports["sns"]),
		"SHARDWATCH_STACK_PERSIST=",
		"SHARDWATCH_STACK_TIMEOUT=60",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		s.t.Fatalf("localstack %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func (s *stack) mustRun(ctx context.Context, args ...string) string {
	s.t.Helper()
	out, errOut, code := s.run(ctx, args...)
	if code != 0 {
		s.t.Fatalf("localstack %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
	}
	return out
}

func (s *stack) pids() map[string]int {
	s.t.Helper()
	pids := map[string]int{}
	for _, svc := range services {
		b, err := os.ReadFile(filepath.Join(s.dir, svc+".pid"))
		if err != nil {
			s.t.Fatalf("pid file of %s: %v", svc, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			s.t.Fatalf("pid file of %s: %v", svc, err)
		}
		pids[svc] = pid
	}
	return pids
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

func TestLocalstackLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second local AWS stack (~10 s): skipped with -short")
	}
	for _, tool := range []string{"bash", "node", "npm", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: scripts/localstack needs it (see its error message for what to install)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	s := newStack(t)
	t.Cleanup(func() {
		// Always stop this test's stack, even after a failure; never the
		// default one (SHARDWATCH_STACK_DIR is the temp dir).
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, errOut, code := s.run(ctx, "down"); code != 0 {
			t.Errorf("cleanup down: exit %d\n%s%s", code, out, errOut)
		}
	})

	start := time.Now()
	out := s.mustRun(ctx, "up")
	t.Logf("up took %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	first := s.pids()
	for svc, pid := range first {
		if !alive(pid) {
			t.Errorf("%s pid %d not alive after up", svc, pid)
		}
	}

	t.Run("second up is a no-op", func(t *testing.T) {
		out := s.mustRun(ctx, "up")
		if diff := cmp.Diff(first, s.pids()); diff != "" {
			t.Errorf("PIDs changed (-first +second):\n%s", diff)
		}
		if got := strings.Count(out, "already running"); got != len(services) {
			t.Errorf("second up output reports %d services already running, want %d:\n%s", got, len(services), out)
		}
	})

	t.Run("status up", func(t *testing.T) {
		out := s.mustRun(ctx, "status")
		for _, svc := range services {
			want := fmt.Sprintf("%s up %d http://127.0.0.1:%d", svc, first[svc], s.ports[svc])
			if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("env", func(t *testing.T) {
		got := strings.Split(strings.TrimSpace(s.mustRun(ctx, "env")), "\n")
		want := []string{
			fmt.Sprintf("export AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:%d", s.ports["kinesis"]),
			fmt.Sprintf("export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:%d", s.ports["dynamodb"]),
			fmt.Sprintf("export AWS_ENDPOINT_URL_SNS=http://127.0.0.1:%d", s.ports["sns"]),
			fmt.Sprintf("export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:%d", s.ports["sns"]),
			"export AWS_ACCESS_KEY_ID=local",
			"export AWS_SECRET_ACCESS_KEY=local",
			"export AWS_REGION=us-east-1",
			"export AWS_DEFAULT_REGION=us-east-1",
			"export AWS_EC2_METADATA_DISABLED=true",
			"export AWS_PAGER=",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("env output (-want +got):\n%s", diff)
		}
	})

	t.Run("restarts only a dead server", func(t *testing.T) {
		if err := syscall.Kill(first["sns"], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return !alive(first["sns"]) })
		if _, _, code := s.run(ctx, "status"); code == 0 {
			t.Error("status exit 0 with goaws killed")
		}
		s.mustRun(ctx, "up")
		now := s.pids()
		if now["kinesis"] != first["kinesis"] || now["dynamodb"] != first["dynamodb"] {
			t.Errorf("healthy servers restarted: before %v, after %v", first, now)
		}
		if now["sns"] == first["sns"] || !alive(now["sns"]) {
			t.Errorf("goaws not restarted: before %d, after %d", first["sns"], now["sns"])
		}
		first = now
	})

	t.Run("down", func(t *testing.T) {
		s.mustRun(ctx, "down")
		for svc, pid := range first {
			if alive(pid) {
				t.Errorf("%s pid %d still alive after down", svc, pid)
			}
		}
		out, _, code := s.run(ctx, "status")
		if code == 0 {
			t.Errorf("status exit 0 after down:\n%s", out)
		}
		if got := strings.Count(out, " down "); got != len(services) {
			t.Errorf("status shows %d services down, want %d:\n%s", got, len(services), out)
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
