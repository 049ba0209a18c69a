package consumer

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/shardwatch/shardwatch/pkg/processors/builtin"
)

// run runs one command with the built-in plugins.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return (&cli{plugins: builtin.Plugins()}).run(ctx, args, getenv, stdout, stderr)
}

func TestMainExitCodeAndEnvironCheck(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(t.Context(), []string{"consumer", "help"}, WithEnv(nil), WithOutput(&out, &errb)); code != 0 || !strings.Contains(out.String(), "replay") {
		t.Errorf("help: code %d, stdout %q", code, out.String())
	}
	errb.Reset()
	code := Main(t.Context(), []string{"consumer", "help"}, WithEnv([]string{"SHARDWATCH_ALARM_TOPIC_ARN=x"}), WithOutput(io.Discard, &errb))
	if code != 1 || !strings.Contains(errb.String(), "SHARDWATCH_ALARM_TOPIC_ARN") {
		t.Errorf("unknown variable: code %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = Main(t.Context(), []string{"consumer", "help"}, WithEnv(nil), WithOutput(io.Discard, &errb), WithPlugins(builtin.Plugins()[0]))
	if code != 0 {
		t.Errorf("a plugin name twice is only checked when processors are built: code %d, stderr %q", code, errb.String())
	}
}
