package chaos

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestChaosCI is the CI-sized chaos run: 3 workers, 4 shards, one fault
// of every kind on a fixed seed, on a private stack (own ports and
// directory; the shared stack is never restarted). `make chaos` runs the
// long, randomised version.
func TestChaosCI(t *testing.T) {
	integration(t)
	t.Parallel()
	seed := uint64(20261122)
	if v := os.Getenv("SHARDWATCH_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = s
	}
	dir := t.TempDir()
	rep, err := Run(t.Context(), Config{
		Seed:          seed,
		Workers:       3,
		Shards:        4,
		Faults:        AllFaults,
		GapMin:        time.Second,
		GapMax:        2 * time.Second,
		SettleTimeout: 90 * time.Second,
		// goaws v0.5.4 does not de-duplicate SNS FIFO publishes, so CI
		// runs the standard kind; SHARDWATCH_CHAOS_TOPIC=fifo checks the
		// FIFO guarantee with SNS's rule applied by the harness.
		Topic:       TopicKind(os.Getenv("SHARDWATCH_CHAOS_TOPIC")),
		ConsumerBin: consumerBin,
		Script:      filepath.Join(repoRoot(t), "scripts", "localstack"),
		Dir:         dir,
		Log:         testLog{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if !rep.OK() {
		for _, p := range []string{"worker-w1-1.log", "worker-w2-1.log"} {
			b, _ := os.ReadFile(filepath.Join(dir, p))
			t.Logf("%s (tail):\n%s", p, tailString(string(b), 3000))
		}
		t.Fatalf("chaos run failed %d checks (seed %d)", len(rep.Problems), seed)
	}
	if len(rep.Faults) != len(AllFaults) {
		t.Fatalf("%d faults injected; want %d", len(rep.Faults), len(AllFaults))
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(string(p[:len(p)-min(1, len(p))]))
	return len(p), nil
}
