package deploycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

var (
	requiredOnce sync.Once
	requiredMap  map[string][]string
	requiredErr  error
)

// ecsRequired reads the required members from the ECS SDK source once.
func ecsRequired(t *testing.T) map[string][]string {
	t.Helper()
	requiredOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var dirs []string
		dirs, requiredErr = GoList(ctx, repoRoot(t), false,
			"github.com/aws/aws-sdk-go-v2/service/ecs", "github.com/aws/aws-sdk-go-v2/service/ecs/types")
		if requiredErr == nil {
			requiredMap, requiredErr = RequiredMembers(dirs...)
		}
	})
	if requiredErr != nil {
		t.Fatal(requiredErr)
	}
	return requiredMap
}

func TestRequiredMembersFromSDKSource(t *testing.T) {
	req := ecsRequired(t)
	want := map[string][]string{
		"types.Ulimit":                    {"HardLimit", "Name", "SoftLimit"},
		"ecs.RegisterTaskDefinitionInput": {"ContainerDefinitions", "Family"},
		"ecs.CreateServiceInput":          {"ServiceName"},
	}
	for k, w := range want {
		got := slices.Sorted(slices.Values(req[k]))
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("%s required members (-want +got):\n%s", k, diff)
		}
	}
}

func TestRawJSONDecodesStrictlyAndValidates(t *testing.T) {
	ctx := context.Background()
	req := ecsRequired(t)
	client := OfflineECS()

	t.Run("taskdef.json", func(t *testing.T) {
		var in ecs.RegisterTaskDefinitionInput
		if err := DecodeStrict(readFile(t, deployFile(t, "taskdef.json")), &in, req); err != nil {
			t.Fatal(err)
		}
		if errs := CheckEnums(&in); len(errs) > 0 {
			t.Fatalf("enum values:\n%s", strings.Join(errs, "\n"))
		}
		_, err := client.RegisterTaskDefinition(ctx, &in)
		if err := Validated(err); err != nil {
			t.Fatalf("SDK input validation: %v", err)
		}
		if len(in.ContainerDefinitions) != 1 || in.ContainerDefinitions[0].Name == nil {
			t.Fatalf("decoded %d container definitions, want 1 named one", len(in.ContainerDefinitions))
		}
	})

	t.Run("service.json", func(t *testing.T) {
		var in ecs.CreateServiceInput
		if err := DecodeStrict(readFile(t, deployFile(t, "service.json")), &in, req); err != nil {
			t.Fatal(err)
		}
		if errs := CheckEnums(&in); len(errs) > 0 {
			t.Fatalf("enum values:\n%s", strings.Join(errs, "\n"))
		}
		_, err := client.CreateService(ctx, &in)
		if err := Validated(err); err != nil {
			t.Fatalf("SDK input validation: %v", err)
		}
		if in.DeploymentConfiguration == nil || in.DeploymentConfiguration.DeploymentCircuitBreaker == nil {
			t.Fatal("deploymentConfiguration.deploymentCircuitBreaker was not decoded")
		}
	})
}

// The checks above must be able to fail: each mutation of the real
// taskdef.json is caught by the stage that should catch it.
func TestRawJSONChecksRejectBadInput(t *testing.T) {
	base := readFile(t, deployFile(t, "taskdef.json"))
	tests := []struct {
		name    string
		mutate  func(m map[string]any)
		stage   string // decode, enum, validate
		mention string
	}{
		{
			name:   "unknown top-level member",
			mutate: func(m map[string]any) { m["stopTimeout"] = 60 },
			stage:  "decode", mention: "$.stopTimeout: unknown member",
		},
		{
			name: "PascalCase member the CLI rejects",
			mutate: func(m map[string]any) {
				m["NetworkMode"] = m["networkMode"]
				delete(m, "networkMode")
			},
			stage: "decode", mention: "$.NetworkMode: unknown member",
		},
		{
			name: "typo in a nested member",
			mutate: func(m map[string]any) {
				get(m, "containerDefinitions", 0).(map[string]any)["readOnlyRootFilesystem"] = true
			},
			stage: "decode", mention: "containerDefinitions[0].readOnlyRootFilesystem",
		},
		{
			name:   "wrong JSON type",
			mutate: func(m map[string]any) { m["cpu"] = 512 },
			stage:  "decode", mention: "Cpu",
		},
		{
			name:   "enum value not in the SDK enum",
			mutate: func(m map[string]any) { m["networkMode"] = "awsvcp" },
			stage:  "enum", mention: `"awsvcp" is not a NetworkMode`,
		},
		{
			name: "nested enum value",
			mutate: func(m map[string]any) {
				get(m, "containerDefinitions", 0, "logConfiguration").(map[string]any)["logDriver"] = "cloudwatch"
			},
			stage: "enum", mention: "logConfiguration.logDriver",
		},
		{
			name:   "required member missing",
			mutate: func(m map[string]any) { delete(m, "family") },
			stage:  "decode", mention: "$: required member family missing",
		},
		{
			// Present but null: only the SDK's own validation sees it.
			name:   "required member null",
			mutate: func(m map[string]any) { m["family"] = nil },
			stage:  "validate", mention: "missing required field, RegisterTaskDefinitionInput.Family",
		},
		{
			name: "required nested enum missing",
			mutate: func(m map[string]any) {
				delete(get(m, "containerDefinitions", 0, "ulimits", 0).(map[string]any), "name")
			},
			stage: "decode", mention: "ulimits[0]: required member name missing",
		},
		{
			name: "required nested number missing (invisible to the SDK)",
			mutate: func(m map[string]any) {
				delete(get(m, "containerDefinitions", 0, "ulimits", 0).(map[string]any), "softLimit")
			},
			stage: "decode", mention: "required member softLimit missing",
		},
	}
	client := OfflineECS()
	req := ecsRequired(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(base, &m); err != nil {
				t.Fatal(err)
			}
			tc.mutate(m)
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var in ecs.RegisterTaskDefinitionInput
			stage, msg := "", ""
			if err := DecodeStrict(data, &in, req); err != nil {
				stage, msg = "decode", err.Error()
			} else if errs := CheckEnums(&in); len(errs) > 0 {
				stage, msg = "enum", strings.Join(errs, "; ")
			} else {
				_, err := client.RegisterTaskDefinition(context.Background(), &in)
				if err := Validated(err); err != nil {
					var inv smithy.InvalidParamsError
					if !errors.As(err, &inv) {
						t.Fatalf("validation error is %T, want smithy.InvalidParamsError: %v", err, err)
					}
					stage, msg = "validate", err.Error()
				}
			}
			if stage != tc.stage || !strings.Contains(msg, tc.mention) {
				t.Fatalf("caught at %q with %q; want stage %q mentioning %q", stage, msg, tc.stage, tc.mention)
			}
		})
	}
}

func TestDecodeStrictRejectsTrailingData(t *testing.T) {
	var in ecs.CreateServiceInput
	data := append(bytes.Clone(readFile(t, deployFile(t, "service.json"))), []byte(`{"serviceName":"x"}`)...)
	if err := DecodeStrict(data, &in, nil); err == nil {
		t.Fatal("two concatenated JSON documents were accepted")
	}
}

func TestOfflineClientNeverSends(t *testing.T) {
	// A valid input goes through validation and is stopped before the
	// transport; errNetwork would mean the stop middleware did not run.
	_, err := OfflineECS().ListClusters(context.Background(), &ecs.ListClustersInput{})
	if errors.Is(err, errNetwork) {
		t.Fatal("offline client reached its HTTP client")
	}
	if !errors.Is(err, errStopped) {
		t.Fatalf("got %v, want the stop sentinel", err)
	}
}
