package deploycheck

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type validatorReport struct {
	File        string
	Status      string
	Version     string
	Diagnostics []struct {
		RuleID, Severity, Message, LogicalID, PropertyPath string
		Line                                               int
	}
}

// The template passes @aws/cloudformation-validate (bundled CloudFormation
// resource schemas and cfn-lint rules, no AWS access) with warnings
// treated as errors, and the same run proves the validator rejects a
// deliberately broken template. deploy/ecs/validate-template.sh installs
// the pinned validator into .cache/cfn-validate on first use (npm ci,
// about 10 MB). The validator costs ~15-40 s of CPU per run, so a passing
// result is remembered in .cache/cfn-validate keyed by the hash of every
// input.
func TestTemplatePassesOfflineValidator(t *testing.T) {
	for _, tool := range []string{"node", "npm", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI to validate deploy/ecs/template.yaml", tool)
			}
			t.Skipf("%s not found: skipping the CloudFormation validator (install Node.js >= 20)", tool)
		}
	}
	root := repoRoot(t)
	script := filepath.Join(root, "deploy", "ecs", "validate-template.sh")
	good := filepath.Join(root, "deploy", "ecs", "template.yaml")
	bad := filepath.Join(root, "internal", "deploycheck", "testdata", "invalid-template.yaml")
	inputs := []string{script, good, bad,
		filepath.Join(root, "deploy", "ecs", "validate", "validate.js"),
		filepath.Join(root, "deploy", "ecs", "validate", "package-lock.json"),
	}
	h := sha256.New()
	for _, f := range inputs {
		h.Write(readFile(t, f))
	}
	stamp := filepath.Join(root, ".cache", "cfn-validate", "passed-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(stamp); err == nil {
		t.Logf("inputs unchanged since the last passing run (%s)", filepath.Base(stamp))
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "--json", good, bad)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !(errorsAs(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("validator did not run: %v\n%s%s", err, out, stderr.Bytes())
	}
	reports := map[string]validatorReport{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var r validatorReport
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("validator output %q: %v", sc.Text(), err)
		}
		reports[r.File] = r
	}
	if len(reports) != 2 {
		t.Fatalf("got %d reports, want 2:\n%s%s", len(reports), out, stderr.Bytes())
	}

	r := reports[good]
	if r.Status != "OK" {
		t.Errorf("template.yaml: validation status %s", r.Status)
	}
	for _, d := range r.Diagnostics {
		t.Errorf("template.yaml:%d: [%s] %s %s.%s: %s", d.Line, d.Severity, d.RuleID, d.LogicalID, d.PropertyPath, d.Message)
	}

	// Unknown property, bad enum value, Fargate CPU/memory mismatch and an
	// unused parameter (a warning, upgraded to an error).
	var ids []string
	for _, d := range reports[bad].Diagnostics {
		if d.Severity != "INFO" {
			ids = append(ids, d.RuleID)
		}
	}
	slices.Sort(ids)
	if diff := cmp.Diff([]string{"E3047", "F3002", "W2001", "W3030"}, ids); diff != "" {
		t.Errorf("findings on the broken template (-want +got):\n%s", diff)
	}
	if !t.Failed() {
		if err := os.WriteFile(stamp, []byte(r.Version+"\n"), 0o644); err != nil {
			t.Logf("remember result: %v", err)
		}
	}
	t.Logf("@aws/cloudformation-validate %s: template clean; broken template: %s", r.Version, strings.Join(ids, " "))
}
