package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestReplay builds this custom consumer, creates an application's tables
// with its setup command and replays a generated access log with its
// replay command, then reads statusmix's global results back.
func TestReplay(t *testing.T) {
	if os.Getenv("SHARDWATCH_SKIP_INTEGRATION") != "" || os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		t.Skip("needs the local AWS stack: eval \"$(scripts/localstack env)\"")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "myconsumer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Three minutes of hits, one every 2 s, statuses cycling 200, 404, 500,
	// an hour ago: result items expire (TTL) a retention after their
	// window, and DynamoDB Local deletes expired items in the background,
	// so fixed old dates made this test fail now and then.
	t0 := time.Now().UTC().Truncate(time.Minute).Add(-time.Hour)
	statuses := []int{200, 404, 500}
	var log bytes.Buffer
	for i := range 90 {
		fmt.Fprintf(&log, "10.0.0.%d - - [%s] \"GET /p%d HTTP/1.1\" %d %d \"-\" \"curl/8\"\n",
			i%5, t0.Add(time.Duration(i)*2*time.Second).Format("02/Jan/2006:15:04:05 -0700"), i, statuses[i%3], 100+i)
	}
	logPath := filepath.Join(dir, "access.log")
	app := fmt.Sprintf("ex%d", time.Now().UnixNano()%1e9)
	conf := filepath.Join(dir, "consumer.yaml")
	write(t, logPath, log.String())
	write(t, conf, "stream: ex\napp: "+app+"\ndeadletter: {sink: file, path: "+filepath.Join(dir, "dl.jsonl")+"}\n"+
		"metrics: {sink: none}\nprocessors:\n  statusmix: {}\n  topn: {n: 3}\n")
	cfg, err := awsconfig.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	t.Cleanup(func() { deleteTables(db, app) })
	runBin(t, bin, "setup", "--app", app, "--shards", "0")
	out := runBin(t, bin, "replay", "--config", conf, logPath)
	if !strings.Contains(out, "90 records") {
		t.Errorf("replay output lacks \"90 records\":\n%s", out)
	}

	for m := range 3 {
		classes := "[0 0 10 0 10 10]"
		pk := "statusmix#60s#" + t0.Add(time.Duration(m)*time.Minute).Format(time.RFC3339)
		got, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(app + "-results"),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "global"}}})
		if err != nil {
			t.Fatal(err)
		}
		if f, _ := got.Item["final"].(*types.AttributeValueMemberBOOL); f == nil || !f.Value {
			t.Errorf("%s: global item missing or not final: %v", pk, got.Item)
			continue
		}
		var ns []string
		for _, v := range got.Item["classes"].(*types.AttributeValueMemberL).Value {
			ns = append(ns, v.(*types.AttributeValueMemberN).Value)
		}
		if s := "[" + strings.Join(ns, " ") + "]"; s != classes {
			t.Errorf("%s: classes %s, want %s", pk, s, classes)
		}
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// deleteTables drops the tables setup created for app (best effort).
func deleteTables(db *dynamodb.Client, app string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := db.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		return
	}
	for _, name := range out.TableNames {
		if name == app || strings.HasPrefix(name, app+"-") {
			_, _ = db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		}
	}
}
