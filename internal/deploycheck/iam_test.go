package deploycheck

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const kclModule = "github.com/vmware/vmware-go-kcl-v2"

// excuse explains why calls from some directories need no grant.
type excuse struct {
	from   []string // directories (relative to the repo root) whose call sites are excused
	reason string
}

// setupOnly: `consumer setup` creates the stream, tables and topic with the
// operator's credentials; the stack creates them for the service, so the
// long-running task never needs these.
const setupOnly = "`consumer setup` runs with operator credentials; in the stack CloudFormation creates these resources"

// notGranted lists actions that code reachable from a binary calls but
// that the stack's role for it deliberately does not get: only the call
// sites under the listed directories are excused, so the same action
// called from the worker's own code still fails. Documented in
// deploy/ecs/README.md ("IAM"). An entry that no longer matches a call
// fails the test, so the list stays true.
var notGranted = map[string]map[string]excuse{
	"TaskRole": {
		"kinesis:CreateStream":        {from: []string{"internal/setup"}, reason: setupOnly},
		"sns:CreateTopic":             {from: []string{"internal/setup"}, reason: setupOnly},
		"dynamodb:UpdateTimeToLive":   {from: []string{"internal/setup"}, reason: setupOnly},
		"dynamodb:DescribeTimeToLive": {from: []string{"internal/setup"}, reason: setupOnly},
	},
	"ProducerRole": {},
}

// grantedWithoutCall lists actions a role gets although no call site
// needs them, with the reason. Same rules as notGranted.
var grantedWithoutCall = map[string]map[string]string{
	"TaskRole":     {},
	"ProducerRole": {},
}

// iamActions maps an API operation to the IAM actions that authorise it:
// the same name, except where the service says otherwise.
func iamActions(c Call) []string {
	switch c.Action() {
	case "sns:PublishBatch":
		return []string{"sns:Publish"} // PublishBatch is authorised by sns:Publish
	case "dynamodb:TransactWriteItems":
		return []string{"dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
	case "dynamodb:TransactGetItems":
		return []string{"dynamodb:GetItem"}
	default:
		return []string{c.Action()}
	}
}

type statement struct {
	Actions   []string
	Resources []string
	Condition map[string]any
}

func roleStatements(t *testing.T, e *Evaluator, role string) []statement {
	t.Helper()
	var out []statement
	for _, pol := range asList(props(t, e, role)["Policies"]) {
		for _, st := range asList(get(pol, "PolicyDocument", "Statement")) {
			if get(st, "Effect") != "Allow" {
				t.Errorf("%s: statement %v is not an Allow", role, get(st, "Sid"))
			}
			s := statement{Condition: asMap(get(st, "Condition"))}
			for _, a := range asList(get(st, "Action")) {
				s.Actions = append(s.Actions, str(a))
			}
			for _, r := range asList(get(st, "Resource")) {
				s.Resources = append(s.Resources, str(r))
			}
			out = append(out, s)
		}
	}
	return out
}

// awsActions are a role's granted actions of the four services we scan.
func awsActions(sts []statement) map[string]bool {
	m := map[string]bool{}
	for _, s := range sts {
		for _, a := range s.Actions {
			svc, _, _ := strings.Cut(a, ":")
			if slices.Contains([]string{"kinesis", "dynamodb", "sns", "cloudwatch"}, svc) {
				m[a] = true
			}
		}
	}
	return m
}

// Least privilege, structurally: no wildcard actions, and every resource
// is this stack's stream, table or topic, except PutMetricData, which
// has no resource type and is scoped by the namespace condition.
func TestRolesAreScopedToStackResources(t *testing.T) {
	e := evaluator(t, map[string]string{"DeployProducerRole": "true"})
	stream := "arn:aws:kinesis:us-east-1:123456789012:stream/shardwatch-events"
	var tables []string
	for _, id := range e.T.ResourcesOfType("AWS::DynamoDB::Table") {
		tables = append(tables, "arn:aws:dynamodb:us-east-1:123456789012:table/"+str(props(t, e, id)["TableName"]))
	}
	topic := "arn:aws:sns:us-east-1:123456789012:shardwatch-alarms"
	for _, role := range []string{"TaskRole", "ProducerRole"} {
		for _, s := range roleStatements(t, e, role) {
			for _, a := range s.Actions {
				if strings.Contains(a, "*") {
					t.Errorf("%s: wildcard action %s", role, a)
				}
				svc, _, _ := strings.Cut(a, ":")
				for _, r := range s.Resources {
					ok := false
					switch svc {
					case "kinesis":
						ok = r == stream
					case "dynamodb":
						ok = slices.Contains(tables, r)
					case "sns":
						ok = r == topic
					case "cloudwatch":
						ns := get(s.Condition, "StringEquals", "cloudwatch:namespace")
						ok = a == "cloudwatch:PutMetricData" && r == "*" && ns == "Shardwatch" && len(s.Actions) == 1
					}
					if !ok {
						t.Errorf("%s: %s on %q is not scoped to this stack's resources", role, a, strings.ReplaceAll(r, Wild, "*"))
					}
				}
			}
		}
	}
}

// The task role grants exactly the AWS operations the consumer's code
// calls, and the producer role exactly the producer's. "Calls" are found
// in the source: operation names by reflection over the SDK clients,
// call sites by parsing every non-test file of the packages each binary
// imports (and, for the consumer, the Kinesis calls of the vmware-go-kcl-v2
// engine packages it imports).
func TestRolesGrantExactlyTheCalledOperations(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	modPath := modulePath(t, root)
	pkgs, err := ParsePackages(root, modPath)
	if err != nil {
		t.Fatal(err)
	}
	services := Services()
	var sdkPkgs []string
	for _, s := range services {
		sdkPkgs = append(sdkPkgs, s.PkgPath)
	}
	dirs, err := GoList(ctx, root, false, sdkPkgs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range services {
		if err := s.LoadCtors(dirs[i]); err != nil {
			t.Fatal(err)
		}
	}

	e := evaluator(t, map[string]string{"DeployProducerRole": "true"})
	bins := []struct{ main, role string }{
		{modPath + "/cmd/consumer", "TaskRole"},
		{modPath + "/cmd/producer", "ProducerRole"},
	}
	for _, b := range bins {
		t.Run(b.role, func(t *testing.T) {
			if pkgs[b.main] == nil {
				t.Skipf("%s does not exist yet: nothing to compare the %s with", b.main, b.role)
			}
			reach := Reachable(pkgs, b.main)
			var calls []Call
			for _, p := range reach {
				calls = append(calls, FindCalls(pkgs[p], services, nil)...)
			}
			if b.role == "TaskRole" {
				calls = append(calls, engineCalls(ctx, t, pkgs, reach, services)...)
			}

			needed := map[string][]string{} // action -> call sites
			for _, c := range calls {
				site := c.Pos
				if c.Via != "" {
					site += " (" + c.Via + ")"
				}
				for _, a := range iamActions(c) {
					needed[a] = append(needed[a], site)
				}
			}
			var report []string
			for _, a := range slices.Sorted(maps.Keys(needed)) {
				report = append(report, fmt.Sprintf("  %-32s %s", a, strings.Join(firstN(needed[a], 3), ", ")))
			}
			t.Logf("%s: operations called from %d packages:\n%s", b.main, len(reach), strings.Join(report, "\n"))

			granted := awsActions(roleStatements(t, e, b.role))
			for a, sites := range needed {
				if granted[a] {
					continue
				}
				ex := notGranted[b.role][a]
				var unexcused []string
				for _, site := range sites {
					if !slices.ContainsFunc(ex.from, func(dir string) bool { return strings.HasPrefix(site, dir+"/") }) {
						unexcused = append(unexcused, site)
					}
				}
				if len(unexcused) > 0 {
					t.Errorf("%s lacks %s, called at %s", b.role, a, strings.Join(firstN(unexcused, 3), ", "))
				}
			}
			for a := range granted {
				if _, ok := needed[a]; ok {
					continue
				}
				if _, ok := grantedWithoutCall[b.role][a]; !ok {
					t.Errorf("%s grants %s, which no code reachable from %s calls", b.role, a, b.main)
				}
			}
			for a := range notGranted[b.role] {
				if _, ok := needed[a]; !ok || granted[a] {
					t.Errorf("stale notGranted entry %s for %s", a, b.role)
				}
			}
			for a := range grantedWithoutCall[b.role] {
				if _, ok := needed[a]; ok || !granted[a] {
					t.Errorf("stale grantedWithoutCall entry %s for %s", a, b.role)
				}
			}
		})
	}
}

// engineCalls are the Kinesis calls of the vmware-go-kcl-v2 packages the
// consumer imports (its DynamoDB checkpointer and CloudWatch metrics are
// replaced by ours, so only Kinesis is taken from it). The enhanced
// fan-out files count only if our code mentions EnhancedFanOut.
func engineCalls(ctx context.Context, t *testing.T, pkgs map[string]*Package, reach []string, services []*Service) []Call {
	t.Helper()
	var start []string
	efo := false
	for _, p := range reach {
		for _, im := range pkgs[p].Imports {
			if strings.HasPrefix(im, kclModule+"/") {
				start = append(start, im)
			}
		}
		efo = efo || UsesIdent(pkgs[p], "EnhancedFanOut")
	}
	if len(start) == 0 {
		t.Logf("the consumer does not import %s", kclModule)
		return nil
	}
	dirs, err := GoList(ctx, repoRoot(t), true, kclModule)
	if err != nil {
		t.Fatal(err)
	}
	kcl, err := ParsePackages(dirs[0], kclModule)
	if err != nil {
		t.Fatal(err)
	}
	var kinesisOnly []*Service
	for _, s := range services {
		if s.Name == "kinesis" {
			kinesisOnly = append(kinesisOnly, s)
		}
	}
	skip := func(file string) bool { return !efo && strings.Contains(filepath.Base(file), "fan-out") }
	var calls []Call
	for _, p := range Reachable(kcl, start...) {
		for _, c := range FindCalls(kcl[p], kinesisOnly, skip) {
			c.Pos = "vmware-go-kcl-v2/" + c.Pos
			calls = append(calls, c)
		}
	}
	if len(calls) == 0 {
		t.Fatalf("found no Kinesis calls in %s: the scanner is broken", kclModule)
	}
	return calls
}

func modulePath(t *testing.T, root string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(readFile(t, filepath.Join(root, "go.mod")))
	if m == nil {
		t.Fatal("go.mod has no module line")
	}
	return string(m[1])
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clip(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}

// The scanner itself, on a small fixture tree: direct calls, calls through
// a consumer-declared interface in another file, aliased imports,
// paginators and waiters, and look-alike calls that are not AWS calls.
func TestFindCalls(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/fx\n")
	write("cmd/app/main.go", `package main
import "example.com/fx/store"
func main() { store.Run() }
`)
	write("store/api.go", `package store
import (
	"context"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
)
type api interface {
	Query(context.Context, *ddb.QueryInput, ...func(*ddb.Options)) (*ddb.QueryOutput, error)
}
`)
	write("store/run.go", `package store
import (
	"bufio"
	"context"
	"os"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)
type emitter interface{ Publish(string) }
func Run() {
	var c api
	var k *kinesis.Client
	ctx := context.Background()
	in := &ddb.QueryInput{}
	c.Query(ctx, in)
	k.ListShards(ctx, &kinesis.ListShardsInput{})
	_ = ddb.NewScanPaginator(nil, nil)
	_ = ddb.NewTableExistsWaiter(nil)
	s := bufio.NewScanner(os.Stdin)
	s.Scan()
	var e emitter
	e.Publish("x")
}
`)
	write("store/run_test.go", `package store
import ("context"; "github.com/aws/aws-sdk-go-v2/service/dynamodb")
func x(c *dynamodb.Client) { c.DeleteTable(context.Background(), nil) }
`)
	write("unused/u.go", `package unused
import ("context"; "github.com/aws/aws-sdk-go-v2/service/sns")
func x(c *sns.Client) { c.Publish(context.Background(), nil) }
`)

	services := Services()
	dirs, err := GoList(context.Background(), repoRoot(t), false, services[0].PkgPath, services[1].PkgPath)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := services[i].LoadCtors(dirs[i]); err != nil {
			t.Fatal(err)
		}
	}
	pkgs, err := ParsePackages(root, "example.com/fx")
	if err != nil {
		t.Fatal(err)
	}
	reach := Reachable(pkgs, "example.com/fx/cmd/app")
	if diff := cmp.Diff([]string{"example.com/fx/cmd/app", "example.com/fx/store"}, reach); diff != "" {
		t.Errorf("reachable (-want +got):\n%s", diff)
	}
	var got []string
	for _, p := range reach {
		for _, c := range FindCalls(pkgs[p], services, nil) {
			got = append(got, c.Action()+" "+c.Pos+" "+c.Via)
		}
	}
	want := []string{
		"dynamodb:DescribeTable store/run.go:18 NewTableExistsWaiter",
		"dynamodb:Query store/run.go:15 ",
		"dynamodb:Scan store/run.go:17 NewScanPaginator",
		"kinesis:ListShards store/run.go:16 ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
