package ociimage

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type instruction struct{ cmd, args string }

// parseDockerfile returns the instructions of each stage (continuation
// lines joined, comments dropped).
func parseDockerfile(t *testing.T, path string) [][]instruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		flush()
	}
	flush()
	return stages
}

// deploy/Dockerfile builds the same image as ShardwatchSpec/RootFS.
func TestDockerfileMatchesDaemonlessImage(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(repoRoot(t), "deploy", "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("%d stages, want build + final", len(stages))
	}
	spec := ShardwatchSpec(nil, "amd64", time.Unix(0, 0), "")

	final := map[string][]string{}
	for _, in := range stages[1] {
		final[in.cmd] = append(final[in.cmd], in.args)
	}
	var entry []string
	if len(final["ENTRYPOINT"]) == 1 {
		if err := json.Unmarshal([]byte(final["ENTRYPOINT"][0]), &entry); err != nil {
			t.Errorf("ENTRYPOINT must be exec form: %v", err)
		}
	}
	var env []string
	for _, e := range final["ENV"] {
		env = append(env, strings.Fields(e)...)
	}
	type shape struct {
		From, User, Workdir string
		Entrypoint, Env     []string
		Copies              []string
		Runs                int
	}
	got := shape{first(final["FROM"]), first(final["USER"]), first(final["WORKDIR"]), entry, env, final["COPY"], len(final["RUN"])}
	want := shape{"scratch", spec.User, spec.WorkingDir, spec.Entrypoint, spec.Env, []string{"--from=build /rootfs/ /"}, 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("final stage (-want +got):\n%s", diff)
	}

	// The build stage produces the same files the same way.
	var build strings.Builder
	for _, in := range stages[0] {
		build.WriteString(in.cmd + " " + in.args + "\n")
	}
	flags := strings.Join(BuildFlags[:len(BuildFlags)-1], " ") + ` -ldflags="` + strings.TrimPrefix(BuildFlags[len(BuildFlags)-1], "-ldflags=") + `"`
	for _, want := range []string{
		"CGO_ENABLED=0",
		"go build " + flags + " -o /rootfs/consumer ./cmd/consumer",
		"go build " + flags + " -o /rootfs/producer ./cmd/producer",
		"cp /etc/ssl/certs/ca-certificates.crt /rootfs" + CABundlePath,
		"cp deploy/image/rootfs/etc/passwd deploy/image/rootfs/etc/group /rootfs/etc/",
		"chmod 1777 /rootfs/tmp",
		"chmod 0700 /rootfs/home/nonroot && chown 65532:65532 /rootfs/home/nonroot",
	} {
		if !strings.Contains(build.String(), want) {
			t.Errorf("build stage lacks %q", want)
		}
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
