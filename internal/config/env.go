package config

import (
	"slices"
	"strings"
)

// EnvConfigFile names the YAML configuration file, like --config.
const EnvConfigFile = "SHARDWATCH_CONFIG"

// EnvProcessors holds the processors mapping as YAML (flow style fits one
// line): {topn: {n: 50}, counters: {}}. It is how a container, which has
// no configuration file, gets its processors (deploy/ecs passes it from a
// stack parameter).
const EnvProcessors = "SHARDWATCH_PROCESSORS"

// otherEnv are the SHARDWATCH_* variables that are not worker settings:
// read by other consumer commands, or by the repository's scripts and tests,
// which share the prefix and so may sit in the same shell. They are listed
// here, in one place, so that the unknown-setting check accepts them.
var otherEnv = map[string]string{
	"SHARDWATCH_SHARDS":             "consumer setup: shard count of a stream it creates",
	"SHARDWATCH_FIFO_TOPIC":         "consumer setup: create the alarm topic as a FIFO topic",
	"SHARDWATCH_DASHBOARD_ADDR":     "consumer dashboard: listen address",
	"SHARDWATCH_DASHBOARD_TOKEN":    "consumer dashboard: access token beyond loopback",
	"SHARDWATCH_DASHBOARD_ALLOW":    "consumer dashboard: CIDRs allowed to connect",
	"SHARDWATCH_SKIP_INTEGRATION":   "tests: skip integration tests when no local stack runs",
	"SHARDWATCH_KINESIS_PORT":       "scripts/localstack: kinesalite port",
	"SHARDWATCH_DYNAMODB_PORT":      "scripts/localstack: DynamoDB Local port",
	"SHARDWATCH_SNS_PORT":           "scripts/localstack: goaws port",
	"SHARDWATCH_DYNAMODB_JAVA_OPTS": "scripts/localstack: DynamoDB Local JVM options",
	"SHARDWATCH_STACK_DIR":          "scripts/localstack: state directory",
	"SHARDWATCH_STACK_PERSIST":      "scripts/localstack: keep data on disk",
	"SHARDWATCH_STACK_TIMEOUT":      "scripts/localstack: start-up deadline",
	"SHARDWATCH_CHROMIUM":           "scripts/browser-deps and the dashboard browser test: Chromium binary",
	"SHARDWATCH_UAEVAL_DIR":         "scripts/uaeval: where the User-Agent evaluation corpora are installed",
	"SHARDWATCH_COST":               "internal/bench: per-processor write-unit estimates (TestChainWriteUnits)",
	"SHARDWATCH_FULL_REPLAY":        "tests: replay every shared data file in full",
	"SHARDWATCH_CHAOS_SEED":         "make chaos: fault schedule seed",
	"SHARDWATCH_CHAOS_WORKERS":      "make chaos: worker count",
	"SHARDWATCH_CHAOS_SHARDS":       "make chaos: shard count",
	"SHARDWATCH_CHAOS_FAULTS":       "make chaos: fault count or kinds",
	"SHARDWATCH_CHAOS_RATE":         "make chaos: records per second",
	"SHARDWATCH_CHAOS_TOPIC":        "make chaos: alarm topic kind, standard or fifo",
	"SHARDWATCH_IMAGE_FULL":         "make image-test: also build and run the real consumer image",
	"SHARDWATCH_CHAOS_DIR":          "make chaos: output directory",
}

// KnownEnv returns every SHARDWATCH_* variable name the consumer accepts:
// the settings table, the configuration file and processors, and the
// variables read for other reasons.
func KnownEnv() []string {
	var c Consumer
	names := []string{EnvConfigFile, EnvProcessors}
	for _, s := range c.scalars() {
		names = append(names, EnvName(s.key))
	}
	for n := range otherEnv {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// UnknownSettingError is a SHARDWATCH_* variable or a flag that no setting
// has: most often a misspelt name that would otherwise be silently ignored.
type UnknownSettingError struct {
	Name    string // the variable or flag as given
	Suggest string // the closest valid name, if any is close
}

func (e *UnknownSettingError) Error() string {
	msg := e.Name + ": unknown setting"
	if e.Suggest != "" {
		msg += "; did you mean " + e.Suggest + "?"
	}
	return msg
}

// CheckEnviron fails on the first SHARDWATCH_* variable in environ
// ("NAME=value" entries, as os.Environ returns them) that is not known.
func CheckEnviron(environ []string) error {
	known := KnownEnv()
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SHARDWATCH_") && !slices.Contains(known, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return &UnknownSettingError{Name: unknown[0], Suggest: closest(unknown[0], known)}
}

// checkFlags fails on the first flag in args that is not defined, naming
// the closest defined one. Every defined flag takes a value ("--x v" or
// "--x=v"); parsing stops at "--" or the first non-flag argument, as the
// flag package does.
func checkFlags(args []string, defined []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			return nil
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case name == "h" || name == "help":
		case slices.Contains(defined, name):
			if !hasValue {
				i++ // its value
			}
		default:
			cands := make([]string, len(defined))
			for j, d := range defined {
				cands[j] = "--" + d
			}
			return &UnknownSettingError{Name: "--" + name, Suggest: closest("--"+name, cands)}
		}
	}
	return nil
}

// closest returns the candidate with the smallest edit distance to name,
// or "" when even that one differs in more than a third of its characters.
func closest(name string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(name, c); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD*3 > len(name) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
